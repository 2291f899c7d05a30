"""The evaluation of a portfolio policy: its weights against the allocation benchmarks, one backtester.

The policy trades the test part greedily in ``rsc/Portfolio-v0``; its decisions are replayed through
:func:`rsc.evaluate.multi_asset.simulate_multi_asset` (the env's own fill), which must reproduce the
env's equity. Every benchmark goes through the same simulation with the same per-asset costs:
equal weight and inverse volatility (rebalanced every ``evaluate.rebalance_every`` bars), minimum
variance, and buy-and-hold of each asset. ``metrics.json`` keeps the single-asset layout (one dict of
figures per strategy, then the sections), so the gate and the registry read it alike; its
``portfolio`` section holds the symbols, the alignment, each asset's contribution and the turnover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from rsc.config.settings import EvaluateSettings
from rsc.core import metrics
from rsc.core.execution import Costs
from rsc.env import PortfolioEnv, greedy_rollout
from rsc.evaluate import multi_asset, suite
from rsc.evaluate.backtest import PARITY_TOLERANCE
from rsc.evaluate.verdict import Evidence, verdict

POLICY = suite.POLICY
EQUAL_WEIGHT = "equal_weight"  # the benchmark the verdict and the gate compare the policy with


class PortfolioBacktest(NamedTuple):
    """One allocation over ``T`` bars (index 0 = before the first fill)."""

    timestamps: np.ndarray  # [T]
    decisions: np.ndarray  # [T, N] target weights decided at each close (NaN = no order)
    run: multi_asset.MultiAssetRun
    open: np.ndarray  # [T, N] fill prices
    close: np.ndarray  # [T, N] marks

    @property
    def weights(self) -> np.ndarray:
        """``[T, N]`` weight of each asset at each close."""
        equity = self.run.equity[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(equity > 0, self.run.units * self.close / equity, 0.0)

    def contribution(self) -> np.ndarray:
        """``[N]`` each asset's P&L (gap from the last close to the fill, then the fill to the close),
        before costs, as a fraction of the starting equity: they sum with the costs to the total return."""
        units = self.run.units
        gap = units[:-1] * (self.open[1:] - self.close[:-1])
        day = units[1:] * (self.close[1:] - self.open[1:])
        return (gap + day).sum(axis=0) / self.run.equity[0]


def backtest_portfolio_policy(
    env: PortfolioEnv, act: Callable[[np.ndarray], np.ndarray]
) -> PortfolioBacktest:
    """Let ``act`` trade one greedy pass of ``env`` and replay its weights through the simulation.

    Raises:
        RuntimeError: the replay's equity differs from the env's (the two money paths disagree).
    """
    rollout = greedy_rollout(env, act)
    start = int(np.searchsorted(env.market.timestamps, rollout.timestamps[0]))
    window = slice(start, start + len(rollout.equity))
    positions = np.asarray(rollout.positions, dtype=np.float64)
    decisions = np.vstack([positions[1:], positions[-1:]])  # chosen at step k = decided at bar k - 1
    result = _simulate(env, decisions, window)
    gap = float(np.max(np.abs(result.run.equity - rollout.equity) / np.abs(rollout.equity)))
    if gap > PARITY_TOLERANCE:
        raise RuntimeError(f"portfolio backtest and env disagree: equity differs by {gap:.3e} (relative)")
    return result


def _simulate(env: PortfolioEnv, decisions: np.ndarray, window: slice) -> PortfolioBacktest:
    market, settings = env.market, env.settings
    fills = (market.open if settings.fill == "next_open" else market.close)[window]
    run = multi_asset.simulate_multi_asset(
        decisions,
        fills,
        market.close[window],
        env.costs,
        settings.initial_cash,
        market.high[window],
        market.low[window],
        None if market.tradable is None else market.tradable[window],
        settings.max_leverage,
        settings.max_drawdown,
    )
    return PortfolioBacktest(market.timestamps[window], decisions, run, fills, market.close[window])


def inverse_volatility(close_history: np.ndarray, n_bars: int, window: int, every: int) -> np.ndarray:
    """``[T, N]`` decisions for the last ``n_bars`` rows: weights proportional to 1 / the trailing
    ``window`` returns' standard deviation on each rebalancing bar (equal while it is undefined)."""
    close_history = np.asarray(close_history, dtype=np.float64)
    offset = len(close_history) - n_bars
    returns = close_history[1:] / close_history[:-1] - 1.0
    n_assets = close_history.shape[1]
    out = np.full((n_bars, n_assets), np.nan)
    for t in np.flatnonzero(multi_asset.rebalance_days(n_bars, every)):
        row = offset + t
        recent = returns[max(0, row - window) : row]
        vol = recent.std(axis=0, ddof=1) if len(recent) > 1 else np.zeros(n_assets)
        out[t] = (1.0 / vol) / (1.0 / vol).sum() if (vol > 0).all() else 1.0 / n_assets
    return out


def buy_and_hold_of(asset: int, n_bars: int, n_assets: int) -> np.ndarray:
    """``[T, N]``: all in one asset at the first bar, then hold."""
    out = np.full((n_bars, n_assets), np.nan)
    out[0] = 0.0
    out[0, asset] = 1.0
    return out


@dataclass(frozen=True)
class PortfolioEvaluation:
    title: str
    symbols: tuple[str, ...]
    annualisation: metrics.Annualisation
    settings: EvaluateSettings
    costs: Costs
    initial_cash: float
    backtests: dict[str, PortfolioBacktest]
    metrics: dict[str, dict[str, float]]
    statistics: dict[str, float | int | None]
    notes: dict[str, str]
    verdict: str
    alignment: Mapping[str, Any] | None = None
    folds: list[dict[str, Any]] | None = None
    data_quality: tuple[str, ...] = ()
    search: dict[str, Any] = field(default_factory=dict)

    @property
    def timestamps(self) -> np.ndarray:
        return self.backtests[POLICY].timestamps

    def portfolio(self) -> dict[str, Any]:
        """metrics.json's ``portfolio`` section."""
        policy = self.backtests[POLICY]
        return {
            "symbols": list(self.symbols),
            "alignment": dict(self.alignment) if self.alignment else None,
            "contribution": dict(zip(self.symbols, map(float, policy.contribution()), strict=True)),
            "final_weights": dict(zip(self.symbols, map(float, policy.weights[-1]), strict=True)),
            "rebalance_every": self.settings.rebalance_every,
            "benchmark": EQUAL_WEIGHT,
        }

    def to_json(self) -> dict[str, Any]:
        first, last = self.timestamps[0], self.timestamps[-1]
        return {
            **self.metrics,
            "statistics": self.statistics,
            "notes": self.notes,
            "conventions": suite.conventions(self.annualisation, self.settings),
            "period": {"start": str(first)[:19], "end": str(last)[:19], "symbol": ",".join(self.symbols)},
            "verdict": self.verdict,
            "folds": self.folds or [],
            "data_quality": list(self.data_quality),
            "search": self.search,
            "holdout": {},
            "portfolio": self.portfolio(),
            "universe": {},
        }


def evaluate_portfolio(
    policy: PortfolioBacktest,
    history_close: np.ndarray,
    symbols: Sequence[str],
    costs: Costs,
    initial_cash: float,
    settings: EvaluateSettings,
    trials: suite.TrialsEvidence,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    tradable: np.ndarray | None = None,
    max_leverage: float = 1.0,
    title: str = "rsc evaluation",
    alignment: Mapping[str, Any] | None = None,
    folds: Sequence[Mapping[str, Any]] | None = None,
) -> PortfolioEvaluation:
    """The policy against every allocation benchmark, through the same simulation and costs.

    Args:
        history_close: ``[H, N]`` closes ending with the policy's evaluated bars (earlier rows warm up
            the minimum-variance and inverse-volatility estimates).
        high, low, tradable: ``[T, N]`` over the evaluated bars (range-based spread; untradable bars).
    """
    n, n_assets = policy.close.shape
    every, window = settings.rebalance_every, settings.covariance_window
    decisions = {
        EQUAL_WEIGHT: multi_asset.equal_weight(n, n_assets, every),
        "min_variance": multi_asset.minimum_variance(history_close, n, window, every),
        "inverse_volatility": inverse_volatility(history_close, n, window, every),
        **{f"buy_and_hold_{s}": buy_and_hold_of(i, n, n_assets) for i, s in enumerate(symbols)},
    }
    backtests = {POLICY: policy}
    for name, decided in decisions.items():
        run = multi_asset.simulate_multi_asset(
            decided, policy.open, policy.close, costs, initial_cash, high, low, tradable, max_leverage
        )
        backtests[name] = PortfolioBacktest(policy.timestamps, decided, run, policy.open, policy.close)
    annualisation = (
        metrics.Annualisation(
            settings.periods_per_year, f"{settings.periods_per_year:g} bars per year: configured"
        )
        if settings.periods_per_year
        else metrics.infer_periods_per_year(policy.timestamps)
    )
    periods, rf, least = annualisation.periods_per_year, settings.risk_free_rate, settings.min_periods
    results = {}
    for name, result in backtests.items():
        run = result.run
        figures = metrics.summary(run.equity, periods, rf, least)
        figures.update(
            turnover=metrics.turnover(run.traded_notional, run.equity, periods, least),
            exposure=metrics.exposure(run.units),
            costs=float(run.costs.sum()),
        )
        results[name] = figures
    market = backtests[EQUAL_WEIGHT].run.equity
    for name, result in backtests.items():
        results[name].update(metrics.relative(result.run.equity, market, periods, rf, least))
    statistics, notes, _ = suite._honest_statistics(
        metrics.bar_returns(policy.run.equity), periods, settings, trials
    )
    notes["benchmark"] = (
        "the verdict and the gate compare the policy with the equal-weight portfolio, rebalanced every "
        f"{every} bars"
    )
    text = verdict(
        Evidence(
            sharpe=results[POLICY]["sharpe"],
            benchmark_sharpe=results[EQUAL_WEIGHT]["sharpe"],
            bars=n - 1,
            psr=statistics["psr"],
            dsr=statistics["dsr"],
            n_trials=statistics["n_trials"],
            n_tries=trials.raw_count,
            pbo=statistics["pbo"],
            random_share_below=None,
            random_seeds=0,
            confidence=settings.confidence,
            notes=notes,
            benchmark=f"equal weight, rebalanced every {every} bars",
        )
    )
    return PortfolioEvaluation(
        title=title,
        symbols=tuple(symbols),
        annualisation=annualisation,
        settings=settings,
        costs=costs,
        initial_cash=initial_cash,
        backtests=backtests,
        metrics=results,
        statistics=statistics,
        notes=notes,
        verdict=text,
        alignment=alignment,
        folds=[dict(f) for f in folds] if folds else None,
        search=trials.search(),
    )
