"""Statistics that discount a backtest for luck and for the number of models tried.

- Probabilistic Sharpe Ratio (PSR): Bailey and López de Prado (2012), "The Sharpe Ratio Efficient
  Frontier", Journal of Risk 15(2), eq. for PSR(SR*).
- Deflated Sharpe Ratio (DSR): Bailey and López de Prado (2014), "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
  Management 40(5): the PSR against the Sharpe ratio expected from the best of N unskilled trials.
- Probability of Backtest Overfitting (PBO) by combinatorially symmetric cross-validation (CSCV):
  Bailey, Borwein, López de Prado and Zhu (2017), "The Probability of Backtest Overfitting", Journal of
  Computational Finance 20(4).

Sharpe ratios here are per bar (not annualised), as in the papers; kurtosis is raw (3 for a normal
distribution), i.e. :func:`rsc.core.metrics.kurtosis` + 3. Bad inputs raise ``ValueError`` saying why.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
from scipy.stats import norm, rankdata

from rsc.core import metrics

EULER_GAMMA = 0.5772156649015329


def probabilistic_sharpe_ratio(
    sharpe: float, n: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """Probability that the true per-bar Sharpe ratio exceeds ``benchmark``.

    Args:
        sharpe: observed per-bar Sharpe ratio.
        n: number of returns it was measured on.
        skew: skewness of those returns.
        kurtosis: raw kurtosis of those returns (3 for a normal distribution).
        benchmark: per-bar Sharpe ratio to beat.
    """
    if n < 2:
        raise ValueError(f"the PSR needs at least 2 returns, got {n}")
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise ValueError(
            f"the PSR's variance term is not positive ({spread:.4g}) for Sharpe {sharpe:.4g}, "
            f"skew {skew:.4g}, kurtosis {kurtosis:.4g}"
        )
    return float(norm.cdf((sharpe - benchmark) * np.sqrt(n - 1) / np.sqrt(spread)))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Per-bar Sharpe ratio expected from the best of ``n_trials`` trials with no skill.

    Args:
        n_trials: independent trials the search ran (1 means no selection: 0 is returned).
        variance: variance of the trials' per-bar Sharpe ratios.
    """
    if n_trials < 1:
        raise ValueError(f"the number of trials must be >= 1, got {n_trials}")
    if variance < 0 or not np.isfinite(variance):
        raise ValueError(f"the variance of the trials' Sharpe ratios must be finite and >= 0, got {variance}")
    if n_trials == 1:
        return 0.0
    return float(
        np.sqrt(variance)
        * (
            (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n_trials)
            + EULER_GAMMA * norm.ppf(1.0 - 1.0 / (n_trials * np.e))
        )
    )


def deflated_sharpe_ratio(
    sharpe: float, n: int, skew: float, kurtosis: float, n_trials: int, trials_variance: float
) -> float:
    """PSR of the selected strategy against :func:`expected_max_sharpe` of the search behind it."""
    return probabilistic_sharpe_ratio(
        sharpe, n, skew, kurtosis, benchmark=expected_max_sharpe(n_trials, trials_variance)
    )


class SharpeInputs(NamedTuple):
    """What the PSR and DSR need from one return series."""

    sharpe: float  # per bar
    n: int
    skew: float
    kurtosis: float  # raw


def sharpe_inputs(returns: np.ndarray, risk_free_per_bar: float = 0.0) -> SharpeInputs:
    """Per-bar Sharpe (sample std), count, skew and raw kurtosis of ``[n]`` returns."""
    excess = np.asarray(returns, dtype=np.float64) - risk_free_per_bar
    if len(excess) < 2:
        raise ValueError(f"needs at least 2 returns, got {len(excess)}")
    std = excess.std(ddof=1)
    if std <= 0:
        raise ValueError("the returns have no variance, so their Sharpe ratio is undefined")
    return SharpeInputs(
        float(excess.mean() / std), len(excess), metrics.skew(excess), metrics.kurtosis(excess) + 3.0
    )


class PBOResult(NamedTuple):
    """Outcome of CSCV over ``C`` combinations."""

    pbo: float  # share of combinations whose in-sample best ranks at or below the out-of-sample median
    logits: np.ndarray  # [C] logit of the in-sample best's relative out-of-sample rank
    in_sample: np.ndarray  # [C] in-sample Sharpe of the in-sample best
    out_of_sample: np.ndarray  # [C] its out-of-sample Sharpe
    probability_of_loss: float  # share of combinations where it loses money out of sample
    n_splits: int


def _block_sharpe(sums: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Per-bar Sharpe from summed returns and squared returns ``[..., N]`` over ``count`` rows."""
    mean = sums / count
    variance = np.maximum((squares - count * mean**2) / (count - 1), 0.0)
    std = np.sqrt(variance)
    return np.where(std > 1e-12, mean / np.where(std > 1e-12, std, 1.0), 0.0)


def probability_of_backtest_overfitting(returns: np.ndarray, n_splits: int = 16) -> PBOResult:
    """CSCV over the trials' per-bar returns ``[T, N]`` (one column per trial), ranking by Sharpe.

    The rows are cut into ``n_splits`` equal blocks in time order (the earliest ``T mod n_splits`` rows
    are dropped). Each way of choosing half of the blocks is an in-sample set and the other half its
    out-of-sample set: the trial with the best in-sample Sharpe is located in the out-of-sample ranking
    (average ranks for ties, rank N = best), ``w = rank / (N + 1)`` and its logit ``log(w / (1 - w))``.
    PBO is the share of logits <= 0, i.e. of selections no better than the out-of-sample median.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[1] < 2:
        raise ValueError(
            f"PBO needs a [T, N] matrix of returns with N >= 2 trials, got shape {returns.shape}"
        )
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"PBO needs an even number of splits >= 2, got {n_splits}")
    if not np.isfinite(returns).all():
        raise ValueError("PBO needs finite returns (a trial's series has NaN or inf)")
    rows = len(returns) // n_splits
    if rows < 2:
        raise ValueError(f"PBO with {n_splits} splits needs at least {2 * n_splits} rows, got {len(returns)}")
    blocks = returns[len(returns) - rows * n_splits :].reshape(n_splits, rows, -1)
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # [S, N]
    members = np.array(list(combinations(range(n_splits), n_splits // 2)))
    chosen = np.zeros((len(members), n_splits))
    np.put_along_axis(chosen, members, 1.0, axis=1)
    count = rows * n_splits // 2
    in_sample = _block_sharpe(chosen @ sums, chosen @ squares, count)  # [C, N]
    out_of_sample = _block_sharpe((1 - chosen) @ sums, (1 - chosen) @ squares, count)
    best = np.argmax(in_sample, axis=1)
    picked = np.arange(len(best))
    ranks = rankdata(out_of_sample, method="average", axis=1)[picked, best]
    relative = ranks / (returns.shape[1] + 1)
    logits = np.log(relative / (1.0 - relative))
    oos_best = out_of_sample[picked, best]
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        in_sample=in_sample[picked, best],
        out_of_sample=oos_best,
        probability_of_loss=float(np.mean(oos_best < 0)),
        n_splits=n_splits,
    )


def largest_even_splits(n_rows: int, preferred: int = 16) -> int:
    """The largest even number of splits <= ``preferred`` that leaves at least 2 rows per block."""
    splits = min(preferred, n_rows // 2)
    return splits - splits % 2
