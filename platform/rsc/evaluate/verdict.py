"""A plain-language verdict from the honest statistics, for readers who are not statisticians."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Evidence(NamedTuple):
    sharpe: float  # annualised, policy
    benchmark_sharpe: float  # annualised, buy-and-hold
    bars: int
    psr: float | None
    dsr: float | None
    n_trials: int | None
    pbo: float | None
    random_share_below: float | None  # None with random_seeds 0: no random strategies compared
    random_seeds: int
    confidence: float
    notes: Mapping[str, str]
    n_tries: int | None = None  # every try the selection looked at (n_trials: the independent ones)
    benchmark: str = "buy-and-hold"  # what benchmark_sharpe is of


def _tries(e: Evidence) -> str:
    if e.n_tries is not None and e.n_tries != e.n_trials:
        return f"{e.n_trials} independent trial{'s' if e.n_trials != 1 else ''} among {e.n_tries} tries"
    return f"{e.n_trials} trials"


def headline(evidence: Evidence) -> str:
    """One of: evidence of skill, likely overfit, no evidence of skill, inconclusive, not enough data."""
    judged = evidence.dsr if evidence.dsr is not None else evidence.psr
    if judged is None:
        return "Not enough data for a verdict"
    if evidence.pbo is not None and evidence.pbo > 0.5:
        return "Likely overfit"
    if judged >= evidence.confidence:
        if evidence.dsr is None:
            return "Evidence of skill, not yet discounted for the hyperparameter search"
        return "Evidence of skill"
    if evidence.psr is not None and evidence.psr < 0.5:
        return "No evidence of skill"
    return "Inconclusive"


def verdict(evidence: Evidence) -> str:
    """A short paragraph: the headline, then what each statistic says in words."""
    e = evidence
    parts = [
        f"{headline(e)}.",
        f"The policy's annualised Sharpe ratio over the {e.bars} evaluated bars is {e.sharpe:.2f} "
        f"({e.benchmark}: {e.benchmark_sharpe:.2f}).",
    ]
    if e.psr is not None:
        parts.append(
            f"The probability that its true Sharpe ratio is above zero is {e.psr:.0%} (PSR); "
            f"{e.confidence:.0%} is the bar for calling it skill."
        )
    else:
        parts.append(f"The probabilistic Sharpe ratio is {e.notes.get('psr', 'not available')}.")
    if e.dsr is not None:
        parts.append(
            f"Discounted for the search behind it ({_tries(e)}), that probability is {e.dsr:.0%} (DSR)."
        )
    else:
        parts.append(f"The deflated Sharpe ratio is {e.notes.get('dsr', 'not available')}.")
    if e.pbo is not None:
        parts.append(
            f"In {e.pbo:.0%} of the cross-validation splits the configuration that looked best in sample "
            f"did no better than the median out of sample (PBO; above 50% means likely overfit)."
        )
    else:
        parts.append(f"The probability of backtest overfitting is {e.notes.get('pbo', 'not available')}.")
    if e.random_seeds and e.random_share_below is not None:
        parts.append(
            f"Its Sharpe ratio beats {e.random_share_below:.0%} of {e.random_seeds} random strategies "
            f"trading the same bars with the same costs."
        )
    return " ".join(parts)


def holdout_line(holdout: Mapping[str, Any]) -> str:
    """The final holdout in one line, for the report and the gate's record (``metrics.json``'s)."""
    return (
        f"Final holdout {holdout['window']} ({holdout['bars']} bars): policy Sharpe "
        f"{holdout['policy']['sharpe']:.2f}, buy-and-hold {holdout['buy_and_hold']['sharpe']:.2f}; this "
        f"holdout has been used by {holdout['models_evaluated']} model(s)."
    )
