"""Execution, costs and portfolio accounting: the one money path of the platform.

A decision taken on bar ``t`` (having seen its close) fills at bar ``t + 1``'s open; the portfolio is
marked at each bar's close. The env, the backtester and the paper broker all call these functions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BPS = 1e-4


class Costs(NamedTuple):
    """Costs charged on traded notional, in basis points."""

    commission_bps: float = 0.0
    slippage_bps: float = 0.0

    @property
    def rate(self) -> float:
        return (self.commission_bps + self.slippage_bps) * BPS


class Portfolio(NamedTuple):
    """Cash and a signed number of units of one asset."""

    cash: float
    units: float = 0.0


def equity(portfolio: Portfolio, price: float) -> float:
    return portfolio.cash + portfolio.units * price


def position_weight(portfolio: Portfolio, price: float) -> float:
    """Value of the position as a fraction of equity (0 when equity is not positive)."""
    value = equity(portfolio, price)
    return portfolio.units * price / value if value > 0 else 0.0


def rebalance(
    portfolio: Portfolio, target_weight: float, price: float, costs: Costs
) -> tuple[Portfolio, float]:
    """Trade to ``target_weight`` of equity at ``price``; returns the new portfolio and the cost paid.

    The target is sized on pre-trade equity; the cost is taken from cash, so the realised weight is
    a hair below target when costs are on.
    """
    target_units = target_weight * equity(portfolio, price) / price
    traded = target_units - portfolio.units
    cost = abs(traded) * price * costs.rate
    return Portfolio(portfolio.cash - traded * price - cost, target_units), cost


class Trajectory(NamedTuple):
    """A simulated run, every array ``[T]``: equity and position after each bar's close."""

    equity: np.ndarray
    units: np.ndarray
    cash: np.ndarray
    costs: np.ndarray


def simulate(
    decisions: np.ndarray, open_: np.ndarray, close: np.ndarray, costs: Costs, initial_cash: float
) -> Trajectory:
    """Run a series of target weights through :func:`rebalance`.

    Args:
        decisions: ``[T]`` target weight decided at each bar's close (the last one is never filled).
        open_: ``[T]`` fill prices.
        close: ``[T]`` mark prices.
    """
    n = len(close)
    out = Trajectory(np.empty(n), np.empty(n), np.empty(n), np.zeros(n))
    portfolio = Portfolio(float(initial_cash))
    out.equity[0], out.units[0], out.cash[0] = initial_cash, 0.0, initial_cash
    for t in range(1, n):
        portfolio, out.costs[t] = rebalance(portfolio, float(decisions[t - 1]), float(open_[t]), costs)
        out.units[t], out.cash[t] = portfolio.units, portfolio.cash
        out.equity[t] = equity(portfolio, float(close[t]))
    return out
