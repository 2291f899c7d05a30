"""Execution, costs and portfolio accounting: the one money path of the platform.

A decision taken on bar ``t`` (having seen its close) fills at bar ``t + 1``'s open (or close); the
portfolio is marked at each bar's close. The env, the backtester and the paper broker all call these
functions. The scalar kernels (:func:`fill`, :func:`protective_exit`, :func:`borrow_cost`) take and
return plain floats so that the env's step stays cheap; :func:`rebalance` and :func:`simulate` are the
same arithmetic behind friendlier types.

Cost model, charged on traded notional ``|units traded| * price``:
commission + slippage (basis points) + half of an optional spread estimated from the last complete
bar's range (``spread_factor * (high - low) / close``). Shorts optionally pay a borrow fee per bar on
their notional (annual basis points / periods per year).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import mul
from typing import NamedTuple

import numpy as np

BPS = 1e-4


class Costs(NamedTuple):
    """Trading costs. Basis points are of traded notional; ``spread_factor`` scales the bar's range."""

    commission_bps: float = 0.0
    slippage_bps: float = 0.0
    spread_factor: float = 0.0
    borrow_bps_per_year: float = 0.0
    periods_per_year: float = 252.0

    @property
    def rate(self) -> float:
        """Cost per unit of traded notional, without the spread part."""
        return (self.commission_bps + self.slippage_bps) * BPS

    @property
    def borrow_rate_per_bar(self) -> float:
        return self.borrow_bps_per_year * BPS / self.periods_per_year


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


def spread_rate(high: float, low: float, close: float, spread_factor: float) -> float:
    """Half-spread per unit of notional, estimated from a bar's range (0 when the factor is 0)."""
    return 0.5 * spread_factor * (high - low) / close if spread_factor else 0.0


def fill(
    cash: float, units: float, entry: float, target_units: float, price: float, cost_rate: float
) -> tuple[float, float, float, float]:
    """Trade the position from ``units`` to ``target_units`` at ``price``: the platform's one fill.

    The cost (``cost_rate`` per unit of traded notional) is taken from cash. A target weight ``w``
    is sized on pre-trade equity, ``target_units = w * (cash + units * price) / price``, so the
    realised weight is a hair below target when costs are on. ``entry`` is the position's average
    entry price (stops and the observation's unrealised return read it): weighted on additions,
    kept on reductions, ``price`` after a flip, 0 when flat.

    Returns:
        ``(cash, units, entry, cost)`` after the trade.
    """
    # Every env step runs this: plain float comparisons (0.0, not 0: CPython compares two floats
    # faster than a float and an int) and products, no builtin calls.
    traded = target_units - units
    if not traded:
        return cash, units, entry, 0.0
    if not target_units:  # closed
        entry = 0.0
    elif not units or units * target_units < 0.0:  # opened or flipped
        entry = price
    elif traded * units > 0.0:  # added to
        entry = (entry * units + price * traded) / target_units
    notional = traded * price
    cost = (notional if notional > 0.0 else -notional) * cost_rate
    return cash - notional - cost, target_units, entry, cost


def borrow_cost(units: float, price: float, rate_per_bar: float) -> float:
    """Fee for holding a short position over one bar (0 for longs)."""
    return -units * price * rate_per_bar if units < 0.0 else 0.0


def protective_exit(
    units: float,
    entry_price: float,
    open_: float,
    high: float,
    low: float,
    stop_loss: float | None,
    take_profit: float | None,
) -> float | None:
    """Price at which a stop-loss or take-profit closes the position during a bar, or None.

    Levels are fractions of the entry price. A gap through a level fills at the bar's open; when
    both levels lie inside one bar's range the stop is assumed to trigger first (conservative).
    """
    if units == 0 or entry_price <= 0:
        return None
    direction = 1.0 if units > 0 else -1.0
    if stop_loss is not None:
        stop = entry_price * (1.0 - direction * stop_loss)
        if direction * (open_ - stop) <= 0:
            return open_
        if (low if direction > 0 else high) * direction <= stop * direction:
            return stop
    if take_profit is not None:
        target = entry_price * (1.0 + direction * take_profit)
        if direction * (open_ - target) >= 0:
            return open_
        if (high if direction > 0 else low) * direction >= target * direction:
            return target
    return None


ORDER_KINDS = ("market", "limit", "stop", "stop_limit")


def order_fill_price(
    kind: str,
    side: int,
    limit: float | None,
    stop: float | None,
    open_: float,
    high: float,
    low: float,
) -> float | None:
    """Price at which an order placed before a bar fills during it, or None (it does not fill).

    ``side`` is +1 to buy, -1 to sell. A market order fills at the open. A limit order fills at the
    open when the bar opens at or through the limit, else at the limit when the bar's range reaches
    it. A stop order triggers at the open on a gap through the stop, else at the stop when the range
    reaches it, and fills there. A stop-limit order becomes a limit order once its stop triggers: it
    fills at the trigger price when that is within the limit; a trigger beyond the limit is assumed
    not to come back inside it during the bar (the path inside a bar is unknown; conservative, as
    :func:`protective_exit`).
    """
    if kind not in ORDER_KINDS:
        raise ValueError(f"unknown order kind {kind!r}; known: {ORDER_KINDS}")
    if kind == "market":
        return open_
    if side not in (1, -1):
        raise ValueError(f"order side must be +1 (buy) or -1 (sell), got {side}")
    best, worst = (low, high) if side > 0 else (high, low)  # the bar's most and least favourable prices
    if kind == "limit":
        if limit is None:
            raise ValueError("a limit order needs a limit price")
        if side * (open_ - limit) <= 0:
            return open_
        return limit if side * (best - limit) <= 0 else None
    if stop is None:
        raise ValueError(f"a {kind} order needs a stop price")
    if side * (open_ - stop) >= 0:
        trigger = open_
    elif side * (worst - stop) >= 0:
        trigger = stop
    else:
        return None
    if kind == "stop":
        return trigger
    if limit is None:
        raise ValueError("a stop_limit order needs a limit price")
    return trigger if side * (trigger - limit) <= 0 else None


def clip_weight(target: float, max_position: float) -> float:
    return max(-max_position, min(max_position, target))


def rebalance(
    portfolio: Portfolio, target_weight: float, price: float, costs: Costs
) -> tuple[Portfolio, float]:
    """Trade to ``target_weight`` of equity at ``price``; returns the new portfolio and the cost paid."""
    target_units = target_weight * equity(portfolio, price) / price
    cash, units, _, cost = fill(portfolio.cash, portfolio.units, 0.0, target_units, price, costs.rate)
    return Portfolio(cash, units), cost


class Trajectory(NamedTuple):
    """A simulated run, every array ``[T]``: equity and position after each bar's close."""

    equity: np.ndarray
    units: np.ndarray
    cash: np.ndarray
    costs: np.ndarray


class Exits(NamedTuple):
    """Protective exits of a position, as the env applies them (``rsc.config.settings.EnvSettings``)."""

    stop_loss: float | None = None
    take_profit: float | None = None
    max_drawdown: float | None = None
    at_open: bool = True  # orders fill at the next bar's open (else at its close)

    @property
    def protective(self) -> bool:
        return self.stop_loss is not None or self.take_profit is not None


def fill_with_exits(
    cash: float,
    units: float,
    entry: float,
    target: float,
    open_: float,
    high: float,
    low: float,
    close: float,
    rate: float,
    exits: Exits,
) -> tuple[float, float, float, float]:
    """One bar's order (to ``target`` weight) and protective exit, in the order they happen in the bar.

    Filling at the open, the new position then meets the bar's range; filling at the close, the held
    position meets the range first and the order fills after. The env's step and :func:`simulate` both
    go through here, so a stop fills at the same price in training and in the backtest.
    """
    exit_cost = 0.0
    if not exits.at_open:
        cash, units, entry, exit_cost = _exit(cash, units, entry, open_, high, low, rate, exits)
    price = open_ if exits.at_open else close
    cash, units, entry, cost = fill(cash, units, entry, target * (cash + units * price) / price, price, rate)
    if exits.at_open:
        cash, units, entry, exit_cost = _exit(cash, units, entry, open_, high, low, rate, exits)
    return cash, units, entry, cost + exit_cost


def _exit(
    cash: float, units: float, entry: float, open_: float, high: float, low: float, rate: float, exits: Exits
) -> tuple[float, float, float, float]:
    price = protective_exit(units, entry, open_, high, low, exits.stop_loss, exits.take_profit)
    if price is None:
        return cash, units, entry, 0.0
    return fill(cash, units, entry, 0.0, price, rate)


def drawdown_stop(
    cash: float, units: float, entry: float, close: float, rate: float
) -> tuple[float, float, float, float]:
    """The drawdown kill switch: flatten at the close the breach was seen on (``(cash, 0, 0, cost)``)."""
    return fill(cash, units, entry, 0.0, close, rate)


def simulate(
    decisions: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    initial_cash: float,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    exits: Exits | None = None,
    bar_open: np.ndarray | None = None,
) -> Trajectory:
    """Run a series of target weights through :func:`fill`, as the env does bar by bar.

    Args:
        decisions: ``[T]`` target weight decided at each bar's close (the last one is never filled).
        open_: ``[T]`` fill prices (the opens; pass the closes to fill at the next close).
        close: ``[T]`` mark prices.
        high, low: ``[T]`` bar ranges, needed when ``costs.spread_factor`` is set (the spread of an
            order decided on bar ``t`` comes from bar ``t``'s range) and for protective exits.
        exits: stop-loss, take-profit and the drawdown kill switch, applied as the env applies them
            (:func:`fill_with_exits`, :func:`drawdown_stop`); after the kill switch nothing trades.
        bar_open: ``[T]`` the bars' opens, needed with a stop-loss or take-profit (a gap fills there).
    """
    n = len(close)
    if costs.spread_factor and (high is None or low is None):
        raise ValueError("costs.spread_factor needs the bars' high and low")
    protective = exits is not None and exits.protective
    if protective and (high is None or low is None or bar_open is None):
        raise ValueError("a stop-loss or take-profit needs the bars' open, high and low")
    out = Trajectory(np.empty(n), np.empty(n), np.empty(n), np.zeros(n))
    cash, units, entry = float(initial_cash), 0.0, 0.0
    out.equity[0], out.units[0], out.cash[0] = initial_cash, 0.0, initial_cash
    borrow_rate, peak, stopped = costs.borrow_rate_per_bar, float(initial_cash), False
    for t in range(1, n):
        rate = costs.rate
        if costs.spread_factor:
            rate += spread_rate(
                float(high[t - 1]), float(low[t - 1]), float(close[t - 1]), costs.spread_factor
            )
        target, cost = (0.0 if stopped else float(decisions[t - 1])), 0.0
        if protective and not stopped:
            cash, units, entry, cost = fill_with_exits(
                cash, units, entry, target, float(bar_open[t]), float(high[t]), float(low[t]),
                float(close[t]), rate, exits,
            )  # fmt: skip
        elif not stopped:
            price = float(open_[t])
            cash, units, entry, cost = fill(
                cash, units, entry, target * (cash + units * price) / price, price, rate
            )
        if borrow_rate and units < 0:
            fee = borrow_cost(units, float(close[t]), borrow_rate)
            cash -= fee
            cost += fee
        value = cash + units * float(close[t])
        peak = max(peak, value)
        if (
            exits is not None
            and exits.max_drawdown is not None
            and not stopped
            and value < (1.0 - exits.max_drawdown) * peak
        ):
            cash, units, entry, exit_cost = drawdown_stop(cash, units, entry, float(close[t]), rate)
            cost += exit_cost
            value, stopped = cash, True
        out.costs[t], out.units[t], out.cash[t] = cost, units, cash
        out.equity[t] = value
    return out


# -- several assets ---------------------------------------------------------------------------------


# From this many assets on, numpy over the asset axis beats float arithmetic on list items
# (benchmarks/env_throughput.py measures both sides of it).
VECTOR_ASSETS = 24


def normalise_weights(
    raw: Sequence[float] | np.ndarray, max_position: float, max_leverage: float
) -> list[float] | np.ndarray:
    """``[N + 1]`` scores (last = cash) -> ``[N]`` asset weights within the limits.

    Scores are clipped to ``[0, 1]`` (the env's action space; NaN counts as 0) and normalised to sum
    to one (all cash when they sum to zero); each asset weight is capped at ``max_position`` and the
    gross exposure scaled down to ``max_leverage``. A list of floats up to :data:`VECTOR_ASSETS` assets
    (a Python loop beats numpy's per-call cost there), an array beyond.
    """
    if len(raw) - 1 > VECTOR_ASSETS:
        scores = np.asarray(raw, dtype=np.float64)
        scores = np.where(scores > 0.0, np.minimum(scores, 1.0), 0.0)
        total = float(scores.sum())
        if not total > 0.0:
            return np.zeros(len(scores) - 1)
        weights = np.minimum(scores[:-1] / total, max_position)
        gross = float(weights.sum())
        return weights * (max_leverage / gross) if gross > max_leverage else weights
    scores = [(x if x < 1.0 else 1.0) if x > 0.0 else 0.0 for x in np.asarray(raw).tolist()]  # floats
    total = sum(scores)
    if not total > 0.0:
        return [0.0] * (len(scores) - 1)
    weights = [min(score / total, max_position) for score in scores[:-1]]
    gross = sum(weights)
    if gross > max_leverage:
        scale = max_leverage / gross
        weights = [weight * scale for weight in weights]
    return weights


def hold_untradable(
    weights: Sequence[float] | np.ndarray,
    cash: float,
    units: Sequence[float] | np.ndarray,
    prices: Sequence[float] | np.ndarray,
    tradable: np.ndarray,
    max_leverage: float,
) -> np.ndarray:
    """Target weights with each untradable asset at its current weight (it keeps its units), the
    tradable ones scaled down so that gross exposure stays within ``max_leverage``.

    Weights are fractions of the pre-trade equity ``cash + units @ prices``.
    """
    out = np.asarray(weights, dtype=np.float64).copy()
    values = np.asarray(units, dtype=np.float64) * np.asarray(prices, dtype=np.float64)
    equity = cash + float(values.sum())
    held = ~np.asarray(tradable, dtype=bool)
    if not held.any() or not equity > 0.0:
        return out
    out[held] = values[held] / equity
    room = max(max_leverage - float(np.abs(out[held]).sum()), 0.0)
    gross = float(np.abs(out[~held]).sum())
    if gross > room:
        out[~held] *= room / gross
    return out


def fill_weights(
    cash: float,
    units: Sequence[float] | np.ndarray,
    target_weights: Sequence[float] | np.ndarray,
    prices: Sequence[float] | np.ndarray,
    cost_rates: Sequence[float] | np.ndarray,
    tradable: np.ndarray | None = None,
) -> tuple[float, list[float] | np.ndarray, float]:
    """Several assets around one cash balance: each traded to its weight of the pre-trade equity.

    Every asset goes through :func:`fill`, the single-asset fill, in turn; from :data:`VECTOR_ASSETS`
    assets on, the same arithmetic runs as numpy over the asset axis. An asset whose ``tradable`` is
    False keeps its units (no order on a bar it did not trade).

    Returns:
        ``(cash, units [N], total cost)`` after the trades (a list, or an array from VECTOR_ASSETS on).
    """
    if len(units) > VECTOR_ASSETS:
        held = np.asarray(units, dtype=np.float64)
        price = np.asarray(prices, dtype=np.float64)
        value = cash + float(held @ price)
        target = np.asarray(target_weights, dtype=np.float64) * value / price
        if tradable is not None:
            target = np.where(tradable, target, held)
        notional = (target - held) * price
        costs = np.abs(notional) * np.asarray(cost_rates, dtype=np.float64)
        total_cost = float(costs.sum())
        return cash - float(notional.sum()) - total_cost, target, total_cost
    value = cash + sum(map(mul, units, prices))
    after, total_cost = [], 0.0
    skip = None if tradable is None else (~np.asarray(tradable)).tolist()
    for i, (held, weight, price, rate) in enumerate(
        zip(units, target_weights, prices, cost_rates, strict=True)
    ):
        if skip is not None and skip[i]:
            after.append(held)
            continue
        cash, held, _, cost = fill(cash, held, 0.0, weight * value / price, price, rate)
        after.append(held)
        total_cost += cost
    return cash, after, total_cost
