"""The evaluation of one single-asset policy trained across a universe: every symbol's own evaluation
(the single-asset suite: benchmarks, random strategies, metrics), then the universe's aggregate.

``metrics.json`` keeps the single-asset layout, so the registry and the gate read it alike: each
strategy's figures are the **median over the symbols** (the gate compares the median policy with the
median buy-and-hold, and says so in the notes). Its ``universe`` section holds each symbol's figures
and the aggregate of the policy's Sharpe ratio: mean, median, worst, and the share of symbols on which
the policy beat buy-and-hold. PSR, DSR and PBO are computed on the policy's returns on every symbol,
pooled (one policy, one set of decisions judged as a whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rsc.config.settings import EvaluateSettings
from rsc.core import metrics
from rsc.evaluate import suite
from rsc.evaluate.verdict import Evidence, verdict

FIGURES = ("sharpe", "total_return", "max_drawdown")


@dataclass(frozen=True)
class UniverseEvaluation:
    title: str
    evaluations: dict[str, suite.Evaluation]  # symbol -> its single-asset evaluation
    settings: EvaluateSettings
    metrics: dict[str, dict[str, float]]  # strategy -> the median of each figure over the symbols
    statistics: dict[str, float | int | None]
    notes: dict[str, str]
    verdict: str
    universe: dict[str, Any]
    folds: list[dict[str, Any]] | None = None
    data_quality: tuple[str, ...] = ()
    search: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.evaluations)

    def to_json(self) -> dict[str, Any]:
        first = min(ev.timestamps[0] for ev in self.evaluations.values())
        last = max(ev.timestamps[-1] for ev in self.evaluations.values())
        any_one = next(iter(self.evaluations.values()))
        return {
            **self.metrics,
            "statistics": self.statistics,
            "notes": self.notes,
            "conventions": suite.conventions(any_one.annualisation, self.settings),
            "period": {"start": str(first)[:19], "end": str(last)[:19], "symbol": ",".join(self.symbols)},
            "verdict": self.verdict,
            "folds": self.folds or [],
            "data_quality": list(self.data_quality),
            "search": self.search,
            "holdout": {},
            "portfolio": {},
            "universe": self.universe,
        }


def median_metrics(evaluations: Mapping[str, suite.Evaluation]) -> dict[str, dict[str, float]]:
    """Each strategy every symbol has, each figure: its median over the symbols."""
    tables = [ev.metrics for ev in evaluations.values()]
    common = [name for name in tables[0] if all(name in table for table in tables)]
    out = {}
    for name in common:
        keys = [key for key in tables[0][name] if all(key in table[name] for table in tables)]
        out[name] = {key: float(np.median([table[name][key] for table in tables])) for key in keys}
    return out


def universe_section(evaluations: Mapping[str, suite.Evaluation]) -> dict[str, Any]:
    """Each symbol's figures, and the aggregate of the policy's Sharpe ratio across them."""
    per_symbol = {
        symbol: {
            strategy: {key: float(ev.metrics[strategy][key]) for key in FIGURES}
            for strategy in (suite.POLICY, suite.BUY_AND_HOLD)
        }
        for symbol, ev in evaluations.items()
    }
    sharpes = np.array([row[suite.POLICY]["sharpe"] for row in per_symbol.values()])
    beat = [row[suite.POLICY]["sharpe"] > row[suite.BUY_AND_HOLD]["sharpe"] for row in per_symbol.values()]
    return {
        "symbols": per_symbol,
        "policy_sharpe": {
            "mean": float(sharpes.mean()),
            "median": float(np.median(sharpes)),
            "worst": float(sharpes.min()),
        },
        "share_beating_buy_and_hold": float(np.mean(beat)),
        "gate_compares": "median",
    }


def evaluate_universe(
    evaluations: Mapping[str, suite.Evaluation],
    settings: EvaluateSettings,
    trials: suite.TrialsEvidence,
    title: str = "rsc evaluation",
) -> UniverseEvaluation:
    """The aggregate of every symbol's evaluation, with the honest statistics on the pooled returns."""
    evaluations = dict(sorted(evaluations.items()))
    results = median_metrics(evaluations)
    section = universe_section(evaluations)
    pooled = np.concatenate(
        [metrics.bar_returns(ev.backtests[suite.POLICY].equity) for ev in evaluations.values()]
    )
    periods = float(np.median([ev.periods_per_year for ev in evaluations.values()]))
    statistics, notes, _ = suite._honest_statistics(pooled, periods, settings, trials)
    notes["universe"] = (
        f"one policy on {len(evaluations)} symbols: each strategy's figures are the median over the symbols, "
        "and the gate compares the median policy with the median buy-and-hold"
    )
    share = [ev.random_distribution["sharpe"]["share_below_policy"] for ev in evaluations.values()]
    text = verdict(
        Evidence(
            sharpe=results[suite.POLICY]["sharpe"],
            benchmark_sharpe=results[suite.BUY_AND_HOLD]["sharpe"],
            bars=len(pooled),
            psr=statistics["psr"],
            dsr=statistics["dsr"],
            n_trials=statistics["n_trials"],
            n_tries=trials.raw_count,
            pbo=statistics["pbo"],
            random_share_below=float(np.median(share)),
            random_seeds=settings.random_seeds,
            confidence=settings.confidence,
            notes=notes,
            benchmark="median buy-and-hold over the symbols",
        )
    )
    sharpe = section["policy_sharpe"]
    text += (
        f" Across the {len(evaluations)} symbols its Sharpe ratio is {sharpe['median']:.2f} (median; mean "
        f"{sharpe['mean']:.2f}, worst {sharpe['worst']:.2f}), and it beat buy-and-hold on "
        f"{section['share_beating_buy_and_hold']:.0%} of them."
    )
    return UniverseEvaluation(
        title=title,
        evaluations=evaluations,
        settings=settings,
        metrics=results,
        statistics=statistics,
        notes=notes,
        verdict=text,
        universe=section,
        search=trials.search(),
    )
