"""The one backtester: target positions in, positions, trades, costs and equity out.

Every strategy the report shows (the policy, each benchmark, each random seed) goes through
:func:`backtest`, which runs :func:`rsc.core.execution.simulate`: the fills, costs and accounting of the
env itself. A learned policy acts in the env (it needs the env's observations, which include its own
position), and its decisions are then replayed here; :func:`backtest_policy` checks both agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rsc.core import metrics
from rsc.core.execution import Costs, Exits, simulate
from rsc.core.trades import RoundTrips, round_trips
from rsc.env import TradingEnv, greedy_rollout

# Replaying the env's decisions must give the env's equity to this relative tolerance.
PARITY_TOLERANCE = 1e-9


class Backtest(NamedTuple):
    """One strategy over ``T`` bars: every array ``[T]``, index 0 = before the first fill."""

    timestamps: np.ndarray
    decisions: np.ndarray  # target weight decided at each close (filled at the next open)
    equity: np.ndarray
    units: np.ndarray  # units held after each bar's fill
    cash: np.ndarray
    weights: np.ndarray  # position value / equity at each close
    costs: np.ndarray
    traded_notional: np.ndarray  # |units traded| * fill price at each bar
    trades: RoundTrips


def backtest(
    decisions: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    initial_cash: float,
    timestamps: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    exits: Exits | None = None,
    bar_open: np.ndarray | None = None,
) -> Backtest:
    """Run target weights through the env's execution and cost model (its exits too, when given).

    Args:
        decisions: ``[T]`` target weight decided at each bar's close (the last one is never filled).
        open_: ``[T]`` fill prices.
        close: ``[T]`` mark prices.
        timestamps: ``[T]`` bar times (default: bar numbers).
        high, low: ``[T]`` bar ranges, for a range-based spread (``costs.spread_factor``) and exits.
        exits, bar_open: stop-loss, take-profit and the drawdown kill switch, and the bars' opens they
            need (:func:`rsc.core.execution.simulate`).
    """
    decisions = np.asarray(decisions, dtype=np.float64)
    open_, close = np.asarray(open_, dtype=np.float64), np.asarray(close, dtype=np.float64)
    if not len(decisions) == len(open_) == len(close) >= 1:
        raise ValueError(
            f"decisions, open and close must have the same non-zero length, got "
            f"{len(decisions)}, {len(open_)}, {len(close)}"
        )
    if not np.isfinite(decisions).all():
        raise ValueError(
            f"decisions must be finite; first bad one at bar {np.flatnonzero(~np.isfinite(decisions))[0]}"
        )
    run = simulate(decisions, open_, close, costs, initial_cash, high, low, exits, bar_open)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(run.equity > 0, run.units * close / run.equity, 0.0)
    return Backtest(
        timestamps=np.arange(len(close)) if timestamps is None else np.asarray(timestamps),
        decisions=decisions,
        equity=run.equity,
        units=run.units,
        cash=run.cash,
        weights=weights,
        costs=run.costs,
        traded_notional=np.abs(np.diff(run.units, prepend=0.0)) * open_,
        trades=round_trips(run.units, open_, close, run.costs, run.equity),
    )


def activity(result: Backtest) -> metrics.Activity:
    return metrics.Activity(
        result.trades.pnl, result.trades.ret, result.traded_notional, result.units, result.costs
    )


def backtest_metrics(
    result: Backtest, periods_per_year: float, risk_free_rate: float, min_periods: int = metrics.MIN_PERIODS
) -> dict[str, float]:
    """:func:`rsc.core.metrics.summary` of a backtest, trade figures included."""
    return metrics.summary(result.equity, periods_per_year, risk_free_rate, min_periods, activity(result))


def decisions_from_positions(positions: np.ndarray) -> np.ndarray:
    """A rollout's ``[N + 1]`` positions (0 first, then the target of each step) -> ``[N + 1]`` decisions.

    The target chosen at step ``k`` was decided at bar ``k - 1``'s close; the last bar's decision is
    never filled, so it repeats the last target.
    """
    positions = np.asarray(positions, dtype=np.float64)
    return np.append(positions[1:], positions[-1]) if len(positions) > 1 else positions.copy()


def backtest_policy(env: TradingEnv, act: Callable[[np.ndarray], int]) -> Backtest:
    """Let ``act`` trade one greedy pass of ``env`` and replay its decisions through :func:`backtest`.

    Raises:
        RuntimeError: the replay's equity differs from the env's (the two money paths disagree).
    """
    settings = env.settings
    rollout = greedy_rollout(env, act)
    start = int(np.searchsorted(env.market.timestamps, rollout.timestamps[0]))
    window = slice(start, start + len(rollout.equity))
    fills = env.market.open if settings.fill == "next_open" else env.market.close
    result = backtest(
        decisions_from_positions(rollout.positions),
        fills[window],
        env.market.close[window],
        env.costs,
        settings.initial_cash,
        rollout.timestamps,
        high=env.market.high[window],
        low=env.market.low[window],
        exits=env.exits,
        bar_open=env.market.open[window],
    )
    gap = float(np.max(np.abs(result.equity - rollout.equity) / np.abs(rollout.equity)))
    if gap > PARITY_TOLERANCE:
        raise RuntimeError(f"backtest and env disagree: equity differs by {gap:.3e} (relative)")
    return result
