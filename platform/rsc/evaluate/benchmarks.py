"""Benchmark strategies as target-weight decisions, run through the same backtester as the policy.

Each rule decides at a bar's close from closes up to that bar only, and is handed the whole price
history before the evaluated bars so that its indicators are warm on the first one. The caller then
backtests the last ``T`` decisions with the same capital and costs as the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rsc.core.execution import Costs
from rsc.evaluate.backtest import Backtest, backtest


def buy_and_hold(n: int, weight: float = 1.0) -> np.ndarray:
    """``[n]`` decisions: fully invested from the first fill on."""
    return np.full(n, float(weight))


def flat(n: int) -> np.ndarray:
    """``[n]`` decisions: never invested (equity stays at the initial cash)."""
    return np.zeros(n)


def _trailing_mean(close: np.ndarray, window: int) -> np.ndarray:
    """``[T]`` mean of the last ``window`` closes (NaN until there are ``window`` of them)."""
    out = np.full(len(close), np.nan)
    if len(close) >= window:
        sums = np.concatenate(([0.0], np.cumsum(close)))
        out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


def sma_crossover(
    close: np.ndarray, fast: int, slow: int, long: float = 1.0, short: float = 0.0
) -> np.ndarray:
    """``[T]`` decisions: ``long`` while the fast SMA is above the slow one, else ``short``.

    Flat (0) until the slow SMA has ``slow`` closes.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"SMA crossover needs 1 <= fast < slow, got fast={fast}, slow={slow}")
    close = np.asarray(close, dtype=np.float64)
    fast_sma, slow_sma = _trailing_mean(close, fast), _trailing_mean(close, slow)
    ready = ~np.isnan(slow_sma)
    return np.where(ready, np.where(fast_sma > slow_sma, long, short), 0.0)


def time_series_momentum(
    close: np.ndarray, lookback: int, long: float = 1.0, short: float = 0.0
) -> np.ndarray:
    """``[T]`` decisions: ``long`` after a positive trailing ``lookback``-bar return, else ``short``.

    Time-series momentum as in Moskowitz, Ooi and Pedersen (2012), "Time series momentum", JFE 104(2).
    Flat (0) until there are ``lookback`` earlier closes.
    """
    if lookback < 1:
        raise ValueError(f"momentum lookback must be >= 1, got {lookback}")
    close = np.asarray(close, dtype=np.float64)
    out = np.zeros(len(close))
    past = close[lookback:] / close[:-lookback] - 1.0
    out[lookback:] = np.where(past > 0, long, short)
    return out


def random_positions(n: int, positions: tuple[float, ...], seed: int) -> np.ndarray:
    """``[n]`` decisions drawn uniformly from the env's positions: a policy with no skill."""
    return np.random.default_rng(seed).choice(np.asarray(positions, dtype=np.float64), size=n)


class RandomRuns(NamedTuple):
    """Many random strategies on the same bars."""

    seeds: np.ndarray  # [S]
    equity: np.ndarray  # [S, T]
    metrics: list[dict[str, float]]  # one summary per seed


def random_runs(
    positions: tuple[float, ...],
    seeds: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    initial_cash: float,
    measure: Callable[[Backtest], dict[str, float]],
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
) -> RandomRuns:
    """Backtest one random strategy per seed; ``measure(Backtest) -> dict`` summarises each.

    ``open_`` is the fill price series (the closes for next-close fills); ``high``/``low`` give a
    range-based spread."""
    runs: list[Backtest] = [
        backtest(
            random_positions(len(close), positions, int(seed)),
            open_,
            close,
            costs,
            initial_cash,
            None,
            high,
            low,
        )
        for seed in seeds
    ]
    return RandomRuns(np.asarray(seeds), np.stack([r.equity for r in runs]), [measure(r) for r in runs])


def distribution(values: np.ndarray, observed: float) -> dict[str, float]:
    """Mean, 5/50/95% quantiles of ``[S]`` values, and the share of them below ``observed``."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "p05": float(np.quantile(values, 0.05)),
        "p50": float(np.quantile(values, 0.50)),
        "p95": float(np.quantile(values, 0.95)),
        "share_below_policy": float(np.mean(values < observed)),
    }
