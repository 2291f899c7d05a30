"""The whole evaluation of one policy backtest: benchmarks, metrics, honest statistics, verdict.

:func:`evaluate` takes arrays (the policy's backtest, the price history, the HPO evidence) and returns
an :class:`Evaluation` that :mod:`rsc.evaluate.report` renders and :meth:`Evaluation.to_json` stores as
``metrics.json``: one flat dict of numbers per strategy at the top level (``policy``,
``buy_and_hold``, ...), then the sections named in :data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rsc.config.settings import EvaluateSettings
from rsc.core import metrics
from rsc.core.execution import Costs
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP
from rsc.evaluate import benchmarks, multi_asset, stats
from rsc.evaluate.backtest import Backtest, backtest, backtest_metrics
from rsc.evaluate.verdict import Evidence, verdict

POLICY, BUY_AND_HOLD = "policy", "buy_and_hold"
SECTIONS = (
    "random_distribution",
    "statistics",
    "notes",
    "conventions",
    "period",
    "verdict",
    "folds",
    "data_quality",
    "search",
    "holdout",
    "portfolio",
    "universe",
)
RANDOM_FIGURES = ("sharpe", "total_return", "max_drawdown")


class PriceHistory(NamedTuple):
    """One asset's bars ``[H]`` up to the last evaluated bar (earlier bars warm up the benchmarks);
    ``high`` and ``low`` are needed for a range-based spread (``env.spread_factor``)."""

    timestamps: np.ndarray
    open: np.ndarray
    close: np.ndarray
    high: np.ndarray | None = None
    low: np.ndarray | None = None


class AssetPrices(NamedTuple):
    """Several assets' bars on common timestamps: ``[H]`` times, ``[H, N]`` prices."""

    symbols: tuple[str, ...]
    timestamps: np.ndarray
    open: np.ndarray
    close: np.ndarray
    high: np.ndarray | None = None
    low: np.ndarray | None = None


class TrialsEvidence(NamedTuple):
    """What the hyperparameter search left behind; a None field is missing, and ``missing`` says why."""

    n_trials: int | None = None  # the DSR's N: independent tries (effective, when known)
    sharpes: np.ndarray | None = None  # [N] annualised validation Sharpe ratios the selection compared
    returns: np.ndarray | None = None  # [T, M] per-bar validation returns of every try, one window
    missing: Mapping[str, str] = {}
    raw_count: int | None = None  # every try looked at on validation data
    breakdown: Mapping[str, int] = {}  # the raw count by where it ran (SearchRecord.breakdown)
    clustered: int | None = None  # series clustered into n_trials (None: each trial counted as one)
    min_correlation: float | None = None

    def search(self) -> dict[str, Any]:
        """metrics.json's ``search`` section: the raw count, its breakdown and how N was derived."""
        if self.raw_count is None:
            return {}
        return {
            "raw_count": self.raw_count,
            **self.breakdown,
            "effective_trials": self.n_trials,
            "clustered_series": self.clustered,
            "min_correlation": self.min_correlation,
        }


@dataclass(frozen=True)
class Evaluation:
    title: str
    symbol: str
    annualisation: metrics.Annualisation
    settings: EvaluateSettings
    costs: Costs
    initial_cash: float
    backtests: dict[str, Backtest]
    price: np.ndarray  # [T] close of the traded asset over the evaluated bars
    random: benchmarks.RandomRuns
    multi_asset: dict[str, multi_asset.MultiAssetRun]
    multi_asset_timestamps: np.ndarray | None
    multi_asset_symbols: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    random_distribution: dict[str, Any]
    statistics: dict[str, float | int | None]
    notes: dict[str, str]
    verdict: str
    pbo: stats.PBOResult | None = None
    folds: list[dict[str, Any]] | None = None
    data_quality: tuple[str, ...] = ()  # warnings of the ingested bars (rsc.data.quality)
    search: dict[str, Any] = field(default_factory=dict)  # the tries behind the DSR (TrialsEvidence)
    holdout: dict[str, Any] = field(default_factory=dict)  # the final holdout's figures and uses

    @property
    def periods_per_year(self) -> float:
        return self.annualisation.periods_per_year

    @property
    def timestamps(self) -> np.ndarray:
        return self.backtests[POLICY].timestamps

    def to_json(self) -> dict[str, Any]:
        """``metrics.json``: every number finite or null, every section named in :data:`SECTIONS`."""
        first, last = self.timestamps[0], self.timestamps[-1]
        return {
            **self.metrics,
            "random_distribution": self.random_distribution,
            "statistics": self.statistics,
            "notes": self.notes,
            "conventions": conventions(self.annualisation, self.settings),
            "period": {"start": str(first)[:19], "end": str(last)[:19], "symbol": self.symbol},
            "verdict": self.verdict,
            "folds": self.folds or [],
            "data_quality": list(self.data_quality),
            "search": self.search,
            "holdout": self.holdout,
            "portfolio": {},
            "universe": {},
        }


def conventions(annualisation: metrics.Annualisation, settings: EvaluateSettings) -> dict[str, Any]:
    """The conventions behind every figure, as stored with them (see :mod:`rsc.core.metrics`)."""
    return {
        "periods_per_year": annualisation.periods_per_year,
        "annualisation": annualisation.description,
        "risk_free_rate": settings.risk_free_rate,
        "min_periods": settings.min_periods,
        "std_ddof": 1,
        "downside_deviation": "sqrt(mean(min(0, r - rf/P)^2)) over all returns",
        "drawdown": "positive fraction below the running peak",
        "win_rate": "fraction of round-trip trades with positive PnL",
        "var_level": metrics.VAR_LEVEL,
        "undefined_ratio": 0.0,
    }


def strategy_metrics(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The per-strategy part of a stored ``metrics.json``."""
    return {name: values for name, values in results.items() if name not in SECTIONS}


def asset_prices(frame: pd.DataFrame, symbols: Sequence[str], until: np.datetime64) -> AssetPrices | None:
    """Open and close of ``symbols`` on the timestamps they share, up to ``until``; None for < 2 assets."""
    present = [s for s in symbols if (frame[SYMBOL] == s).any()]
    if len(present) < 2:
        return None
    rows = frame[frame[SYMBOL].isin(present) & (frame[TIMESTAMP] <= until)]
    values = [OPEN, HIGH, LOW, CLOSE]
    wide = rows.pivot_table(index=TIMESTAMP, columns=SYMBOL, values=values).dropna().sort_index()
    return AssetPrices(
        tuple(present),
        wide.index.to_numpy(),
        *(wide[name][present].to_numpy(np.float64) for name in (OPEN, CLOSE, HIGH, LOW)),
    )


def _benchmark_decisions(
    history: PriceHistory, n: int, positions: tuple[float, ...], settings: EvaluateSettings
) -> dict[str, np.ndarray]:
    long, short = max(max(positions), 0.0), min(min(positions), 0.0)
    return {
        BUY_AND_HOLD: benchmarks.buy_and_hold(n),
        "flat": benchmarks.flat(n),
        "sma_crossover": benchmarks.sma_crossover(
            history.close, settings.sma_fast, settings.sma_slow, long, short
        )[-n:],
        "momentum": benchmarks.time_series_momentum(history.close, settings.momentum_lookback, long, short)[
            -n:
        ],
    }


def _multi_asset_results(
    prices: AssetPrices,
    timestamps: np.ndarray,
    market: np.ndarray,
    costs: Costs,
    cash: float,
    settings: EvaluateSettings,
    periods: float,
    fill: str = "next_open",
) -> tuple[dict[str, multi_asset.MultiAssetRun], np.ndarray, dict[str, dict[str, float]]]:
    """Equal-weight and minimum-variance runs over the evaluated bars the assets share, and their figures.

    Args:
        market: ``[T]`` buy-and-hold equity on ``timestamps``, for alpha and beta when the bars match.
    """
    keep = (prices.timestamps >= timestamps[0]) & (prices.timestamps <= timestamps[-1])
    stop = int(np.flatnonzero(keep)[-1]) + 1
    n = int(keep.sum())
    weights = {
        "equal_weight": multi_asset.equal_weight(n, len(prices.symbols), settings.rebalance_every),
        "min_variance": multi_asset.minimum_variance(
            prices.close[:stop], n, settings.covariance_window, settings.rebalance_every
        ),
    }
    rf, least = settings.risk_free_rate, settings.min_periods
    runs, results = {}, {}
    for name, decided in weights.items():
        fills = prices.open if fill == "next_open" else prices.close
        ranges = (None, None) if prices.high is None else (prices.high[keep], prices.low[keep])
        run = multi_asset.simulate_multi_asset(decided, fills[keep], prices.close[keep], costs, cash, *ranges)
        figures = metrics.summary(run.equity, periods, rf, least)
        figures.update(
            turnover=metrics.turnover(run.traded_notional, run.equity, periods, least),
            exposure=metrics.exposure(run.units),
            costs=float(run.costs.sum()),
        )
        if np.array_equal(prices.timestamps[keep], timestamps):
            figures.update(metrics.relative(run.equity, market, periods, rf, least))
        runs[name], results[name] = run, figures
    return runs, prices.timestamps[keep], results


def _random_benchmark(
    positions: tuple[float, ...],
    seeds: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    cash: float,
    measure: Callable[[Backtest], dict[str, float]],
    policy: Mapping[str, float],
    ranges: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> tuple[benchmarks.RandomRuns, dict[str, float], dict[str, Any]]:
    """Random seeds' runs, the median of each figure over them, and their distribution vs the policy."""
    random = benchmarks.random_runs(positions, seeds, open_, close, costs, cash, measure, *ranges)
    median = {key: float(np.median([m[key] for m in random.metrics])) for key in random.metrics[0]}
    distribution: dict[str, Any] = {"seeds": len(seeds)}
    for key in RANDOM_FIGURES:
        distribution[key] = benchmarks.distribution(np.array([m[key] for m in random.metrics]), policy[key])
    return random, median, distribution


def _deflated(
    inputs: stats.SharpeInputs | None, periods: float, trials: TrialsEvidence
) -> tuple[dict[str, float], str | None]:
    """DSR and its inputs, or the reason it is not available."""
    if inputs is None:
        return {}, "not available: the PSR it builds on is not available"
    if trials.n_trials is None or trials.sharpes is None:
        return {}, trials.missing.get("dsr", "not available for this run")
    if len(trials.sharpes) < 2:
        return {}, (
            "not available: the variance of the trials' Sharpe ratios needs at least 2 trials with a "
            f"validation Sharpe ratio, this run has {len(trials.sharpes)}"
        )
    variance = float(np.var(trials.sharpes, ddof=1)) / periods  # annualised Sharpe -> per bar
    try:
        return {
            "dsr": stats.deflated_sharpe_ratio(*inputs, trials.n_trials, variance),
            "expected_max_sharpe": stats.expected_max_sharpe(trials.n_trials, variance) * np.sqrt(periods),
            "trials_sharpe_variance": variance * periods,
        }, None
    except ValueError as error:
        return {}, f"not available: {error}"


def _overfitting(trials: TrialsEvidence, splits: int) -> tuple[stats.PBOResult | None, str | None]:
    if trials.returns is None:
        return None, trials.missing.get("pbo", "not available for this run")
    try:
        usable = max(stats.largest_even_splits(len(trials.returns), splits), 2)
        return stats.probability_of_backtest_overfitting(trials.returns, usable), None
    except ValueError as error:
        return None, f"not available: {error}"


def _honest_statistics(
    returns: np.ndarray, periods: float, settings: EvaluateSettings, trials: TrialsEvidence
) -> tuple[dict[str, float | int | None], dict[str, str], stats.PBOResult | None]:
    """PSR, DSR and PBO (None where not available) and, for each one missing, the reason."""
    out: dict[str, float | int | None] = {
        "n_returns": len(returns),
        "n_trials": trials.n_trials,
        "n_trials_raw": trials.raw_count,
        **dict.fromkeys(("psr", "dsr", "expected_max_sharpe", "trials_sharpe_variance")),
        **dict.fromkeys(("pbo", "pbo_probability_of_loss", "pbo_splits")),
    }
    notes: dict[str, str] = {}
    try:
        inputs = stats.sharpe_inputs(returns, settings.risk_free_rate / periods)
        out["psr"] = stats.probabilistic_sharpe_ratio(*inputs)
    except ValueError as error:
        inputs, notes["psr"] = None, f"not available: {error}"
    deflated, note = _deflated(inputs, periods, trials)
    out.update(deflated)
    if note:
        notes["dsr"] = note
    pbo, note = _overfitting(trials, settings.pbo_splits)
    if pbo is not None:
        out.update(pbo=pbo.pbo, pbo_probability_of_loss=pbo.probability_of_loss, pbo_splits=pbo.n_splits)
    if note:
        notes["pbo"] = note
    return out, notes, pbo


def evaluate(
    policy: Backtest,
    history: PriceHistory,
    symbol: str,
    positions: tuple[float, ...],
    costs: Costs,
    initial_cash: float,
    settings: EvaluateSettings,
    seed: int,
    trials: TrialsEvidence,
    assets: AssetPrices | None = None,
    folds: Sequence[Mapping[str, Any]] | None = None,
    title: str = "rsc evaluation",
    fill: str = "next_open",
) -> Evaluation:
    """Benchmarks through the same backtester, every metric, PSR/DSR/PBO and a plain verdict.

    Every benchmark fills as the policy did (``fill``: the next bar's open or close) and pays the same
    costs, a range-based spread included (it needs the history's high and low).
    """
    n = len(policy.equity)
    stamps = policy.timestamps
    if len(history.close) < n or not np.array_equal(history.timestamps[-n:], stamps):
        raise ValueError("the price history must end with exactly the policy's evaluated bars")
    if costs.spread_factor and (history.high is None or history.low is None):
        raise ValueError("a range-based spread (env.spread_factor) needs the price history's high and low")
    fills = (history.open if fill == "next_open" else history.close)[-n:]
    close = history.close[-n:]
    ranges = (None, None) if history.high is None else (history.high[-n:], history.low[-n:])
    annualisation = (
        metrics.Annualisation(
            settings.periods_per_year, f"{settings.periods_per_year:g} bars per year: configured"
        )
        if settings.periods_per_year
        else metrics.infer_periods_per_year(history.timestamps)
    )
    periods, rf, least = annualisation.periods_per_year, settings.risk_free_rate, settings.min_periods

    def measure(result: Backtest) -> dict[str, float]:
        return backtest_metrics(result, periods, rf, least)

    backtests = {POLICY: policy}
    for name, decisions in _benchmark_decisions(history, n, positions, settings).items():
        backtests[name] = backtest(decisions, fills, close, costs, initial_cash, stamps, *ranges)
    results = {name: measure(result) for name, result in backtests.items()}
    market = backtests[BUY_AND_HOLD].equity
    for name, result in backtests.items():
        results[name].update(metrics.relative(result.equity, market, periods, rf, least))

    random, results["random_median"], distribution = _random_benchmark(
        positions,
        seed + np.arange(settings.random_seeds),
        fills,
        close,
        costs,
        initial_cash,
        measure,
        results[POLICY],
        ranges,
    )

    runs, asset_stamps, notes = {}, None, {}
    if assets is not None:
        runs, asset_stamps, figures = _multi_asset_results(
            assets, stamps, market, costs, initial_cash, settings, periods, fill
        )
        results.update(figures)
    else:
        notes["multi_asset"] = "equal-weight and minimum-variance benchmarks need at least 2 symbols"

    statistics, stat_notes, pbo = _honest_statistics(
        metrics.bar_returns(policy.equity), periods, settings, trials
    )
    notes.update(stat_notes)
    text = verdict(
        Evidence(
            sharpe=results[POLICY]["sharpe"],
            benchmark_sharpe=results[BUY_AND_HOLD]["sharpe"],
            bars=n - 1,
            psr=statistics["psr"],
            dsr=statistics["dsr"],
            n_trials=statistics["n_trials"],
            n_tries=trials.raw_count,
            pbo=statistics["pbo"],
            random_share_below=distribution["sharpe"]["share_below_policy"],
            random_seeds=settings.random_seeds,
            confidence=settings.confidence,
            notes=notes,
        )
    )
    return Evaluation(
        title=title,
        symbol=symbol,
        annualisation=annualisation,
        settings=settings,
        costs=costs,
        initial_cash=initial_cash,
        backtests=backtests,
        price=close,
        random=random,
        multi_asset=runs,
        multi_asset_timestamps=asset_stamps,
        multi_asset_symbols=assets.symbols if assets is not None else (),
        metrics=results,
        random_distribution=distribution,
        statistics=statistics,
        notes=notes,
        verdict=text,
        pbo=pbo,
        folds=[dict(f) for f in folds] if folds else None,
        search=trials.search(),
    )
