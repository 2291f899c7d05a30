"""Multi-asset benchmarks (equal weight, minimum variance) over the env's multi-asset fill.

:func:`simulate_multi_asset` runs target weights through :func:`rsc.core.execution.fill_weights`, the
fill of ``rsc/Portfolio-v0``: every asset goes through the single-asset fill around one shared cash
balance, target units are sized on pre-trade equity at the fill price, costs are charged on each
asset's traded notional, and a decision at bar ``t`` fills at bar ``t + 1``'s open. With one asset it
reproduces ``simulate`` exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from rsc.core.execution import Costs, borrow_cost, fill_weights, hold_untradable


class MultiAssetRun(NamedTuple):
    """``[T]`` equity, cash, costs and traded notional; ``[T, N]`` units held after each fill."""

    equity: np.ndarray
    units: np.ndarray
    cash: np.ndarray
    costs: np.ndarray
    traded_notional: np.ndarray


def simulate_multi_asset(
    weights: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    initial_cash: float,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    tradable: np.ndarray | None = None,
    max_leverage: float = 1.0,
    max_drawdown: float | None = None,
) -> MultiAssetRun:
    """Run target weights ``[T, N]`` decided at each close; a row of NaN means "no order".

    The costs are the single-asset ones, per asset: commission and slippage, a range-based spread from
    the decision bar's range (``costs.spread_factor``, needs ``high`` and ``low``) and the borrow fee on
    short units at each close.

    Args:
        weights: ``[T, N]`` target weight of each asset (fractions of equity).
        open_: ``[T, N]`` fill prices (the closes for next-close fills).
        close: ``[T, N]`` mark prices.
        tradable: ``[T, N]`` False where an asset did not trade (it keeps its units there; the other
            targets are scaled within ``max_leverage``, as the env does).
        max_drawdown: the env's kill switch: below this fraction under the equity peak, sell everything
            at that close and trade no more.
    """
    weights, open_, close = (np.asarray(a, dtype=np.float64) for a in (weights, open_, close))
    if not weights.shape == open_.shape == close.shape or weights.ndim != 2:
        raise ValueError(
            f"weights, open and close must all be [T, N], got {weights.shape}, {open_.shape}, {close.shape}"
        )
    n_bars, n_assets = close.shape
    units = np.zeros((n_bars, n_assets))
    equity, cash, paid, notional = (np.zeros(n_bars) for _ in range(4))
    equity[0] = cash[0] = initial_cash
    if costs.spread_factor and (high is None or low is None):
        raise ValueError("costs.spread_factor needs the bars' high and low")
    rates = np.full((n_bars, n_assets), costs.rate)
    if costs.spread_factor:
        rates += 0.5 * costs.spread_factor * (np.asarray(high) - np.asarray(low)) / close
    borrow = costs.borrow_rate_per_bar
    held, balance = [0.0] * n_assets, float(initial_cash)
    peak, stopped = float(initial_cash), False
    for t in range(1, n_bars):
        target = weights[t - 1]
        if not np.isnan(target).all():
            price = open_[t].tolist()
            before = held
            mask = None if tradable is None or tradable[t].all() else tradable[t]
            if mask is not None:
                target = hold_untradable(target, balance, held, price, mask, max_leverage)
            balance, held, paid[t] = fill_weights(
                balance, held, target.tolist(), price, rates[t - 1].tolist(), mask
            )
            held = list(held)
            notional[t] = sum(abs(after - had) * p for after, had, p in zip(held, before, price, strict=True))
        if borrow:
            fee = sum(
                borrow_cost(u, float(c), borrow) for u, c in zip(held, close[t], strict=True) if u < 0.0
            )
            balance -= fee
            paid[t] += fee
        units[t], cash[t] = held, balance
        equity[t] = balance + float(units[t] @ close[t])
        peak = max(peak, equity[t])
        if stopped:
            continue
        if max_drawdown is not None and equity[t] < (1.0 - max_drawdown) * peak:
            mask = None if tradable is None or tradable[t].all() else tradable[t]
            flat = [0.0] * n_assets
            balance, held, exit_cost = fill_weights(
                balance, held, flat, close[t].tolist(), rates[t - 1].tolist(), mask
            )
            held = list(held)
            paid[t] += exit_cost
            units[t], cash[t] = held, balance
            equity[t] = balance + float(units[t] @ close[t])
            weights = np.full_like(weights, np.nan)  # stopped: no order after this bar
            stopped = True
    return MultiAssetRun(equity, units, cash, paid, notional)


def rebalance_days(n_bars: int, every: int) -> np.ndarray:
    """``[T]`` bool: the bars whose close takes a rebalancing decision (the first, then every ``every``)."""
    if every < 1:
        raise ValueError(f"rebalance interval must be >= 1 bar, got {every}")
    return np.arange(n_bars) % every == 0


def equal_weight(n_bars: int, n_assets: int, every: int) -> np.ndarray:
    """``[T, N]`` decisions: ``1 / N`` in each asset, re-set every ``every`` bars (NaN between)."""
    out = np.full((n_bars, n_assets), np.nan)
    out[rebalance_days(n_bars, every)] = 1.0 / n_assets
    return out


def minimum_variance_weights(returns: np.ndarray) -> np.ndarray:
    """Long-only, fully invested weights ``[N]`` that minimise the sample variance of ``[W, N]`` returns."""
    n_assets = returns.shape[1]
    start = np.full(n_assets, 1.0 / n_assets)
    if len(returns) < 2:
        return start
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    scale = np.trace(covariance) / n_assets
    if not scale > 0:
        return start
    covariance = covariance / scale  # daily variances are ~1e-4: rescale so SLSQP's tolerances bite
    solution = minimize(
        lambda w: w @ covariance @ w,
        start,
        jac=lambda w: 2.0 * covariance @ w,
        bounds=[(0.0, 1.0)] * n_assets,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 200},
    )
    if not solution.success:
        return start
    weights = np.clip(solution.x, 0.0, 1.0)
    return weights / weights.sum()


def minimum_variance(close_history: np.ndarray, n_bars: int, window: int, every: int) -> np.ndarray:
    """``[T, N]`` decisions for the last ``n_bars`` rows of ``[H, N]`` closes.

    On each rebalancing bar the weights minimise the variance of the trailing ``window`` returns up
    to that close (equal weights while fewer than two returns exist); NaN (hold) between.
    """
    close_history = np.asarray(close_history, dtype=np.float64)
    offset = len(close_history) - n_bars
    if offset < 0:
        raise ValueError(f"close history has {len(close_history)} rows, fewer than the {n_bars} evaluated")
    returns = close_history[1:] / close_history[:-1] - 1.0
    out = np.full((n_bars, close_history.shape[1]), np.nan)
    for t in np.flatnonzero(rebalance_days(n_bars, every)):
        row = offset + t  # returns[row - 1] is the return into this close
        out[t] = minimum_variance_weights(returns[max(0, row - window) : row])
    return out
