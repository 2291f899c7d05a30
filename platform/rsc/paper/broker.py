"""The simulated broker: orders placed at a bar's close fill during the next bar, with the env's costs.

Fill prices come from :func:`rsc.core.execution.order_fill_price` (market at the open; limit, stop
and stop-limit on the bar's range, gaps at the open). Costs are the env's: ``cost_rate`` per unit
of traded notional (commission + slippage + half the spread estimated from the decision bar, fixed
when the order is placed), borrow on shorts at each mark. An order asks either for a target weight
(sized on the book's equity at this bar's opens, as the env sizes its trades) or for a signed
quantity of units; either fills through :func:`rsc.core.execution.fill`, the env's fill. Orders live
for one bar: one that does not fill expires.

Rejections, of orders that grow a position (one that shrinks a position only lowers the risk): a
fill that would leave one symbol's weight above ``max_position`` or the gross exposure above
``max_leverage`` (both against the equity at the opens), and a buy of a fixed quantity that costs
more than the cash on hand plus the margin ``max_leverage`` allows. A target-weight order is sized
on equity, so, like the env's trades, it never overdraws by more than its own costs (an all-in buy
leaves cash at minus its commission and slippage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from rsc.core.execution import borrow_cost, fill, order_fill_price, spread_rate
from rsc.paper.state import BookState, LedgerEvent, finite

TOLERANCE = 1e-9  # relative slack on limit checks, for sizes that hit a limit exactly


class Bar(NamedTuple):
    open: float
    high: float
    low: float
    close: float
    volume: float


class Limits(NamedTuple):
    max_position: float
    max_leverage: float


def order_cost_rate(base_rate: float, bar: Bar, spread_factor: float) -> float:
    """Cost per unit of notional of an order decided on ``bar`` (as the env charges it)."""
    return base_rate + spread_rate(bar.high, bar.low, bar.close, spread_factor)


def _values(units: Mapping[str, float], prices: Mapping[str, float]) -> dict[str, float]:
    return {symbol: units[symbol] * prices[symbol] for symbol in units if units[symbol]}


def _rejection(
    order: LedgerEvent,
    traded: float,
    after: float,
    price: float,
    cash: float,
    equity: float,
    others: float,
    limits: Limits,
) -> str | None:
    """Why the broker refuses a fill (``others``: gross value of the book's other positions), or None.

    An order that shrinks a position only lowers exposure and is never refused.
    """
    if abs(after) <= abs(after - traded):
        return None
    if equity <= 0:
        return "no equity"
    weight = after * price / equity
    if abs(weight) > limits.max_position * (1 + TOLERANCE):
        return f"max_position: weight {weight:.4f} above {limits.max_position}"
    if order["quantity"] is not None and traded > 0:
        needs = traded * price * (1 + order["cost_rate"])
        buying_power = cash + (limits.max_leverage - 1.0) * equity
        if needs > buying_power + TOLERANCE * equity:
            return f"insufficient cash: needs {needs:.2f}, has {buying_power:.2f}"
    gross = (others + abs(after * price)) / equity
    if gross > limits.max_leverage * (1 + TOLERANCE):
        return f"max_leverage: gross exposure {gross:.4f} above {limits.max_leverage}"
    return None


def _sized(order: LedgerEvent, held: float, equity: float, price: float) -> tuple[float, float]:
    """``(traded, after)`` units; a target weight is sized on equity, as the env sizes its trades."""
    if order["target_weight"] is not None:
        after = order["target_weight"] * equity / price
        return after - held, after
    return order["quantity"], held + order["quantity"]


def execute(book: BookState, name: str, bars: Mapping[str, Bar], limits: Limits) -> list[LedgerEvent]:
    """One ``fill``, ``reject`` or ``expire`` event per pending order of ``book`` on this bar.

    Orders that shrink a position fill first (they free cash and exposure for the ones that grow
    one); within each group, symbols in order. A symbol without a bar this time keeps its last close
    for the equity; its orders expire.
    """
    prices = {**book.prices, **{symbol: bar.open for symbol, bar in bars.items()}}
    cash, units, entry = book.cash, dict(book.units), dict(book.entry)
    equity = cash + sum(_values(units, prices).values())
    events: list[LedgerEvent] = []
    priced = []
    for order in book.pending:
        bar = bars.get(order["symbol"])
        if bar is None:
            events.append(_closed("expire", name, order, "no bar for the symbol"))
            continue
        price = order_fill_price(
            order["kind"], order["side"], order["limit"], order["stop"], bar.open, bar.high, bar.low
        )
        if price is None:
            events.append(_closed("expire", name, order, "price not reached"))
            continue
        held = units.get(order["symbol"], 0.0)
        grows = abs(_sized(order, held, equity, price)[1]) > abs(held)
        priced.append((grows, order["symbol"], order["id"], order, price))
    for _, symbol, _, order, price in sorted(priced, key=lambda p: p[:3]):
        held = units.get(symbol, 0.0)
        traded, after = _sized(order, held, equity, price)
        if order["kind"] != "market" and traded * order["side"] <= 0:
            events.append(_closed("expire", name, order, "target already reached"))
            continue
        others = sum(abs(v) for s, v in _values(units, prices).items() if s != symbol)
        refused = _rejection(order, traded, after, price, cash, equity, others, limits)
        if refused is not None:
            events.append(_closed("reject", name, order, refused))
            continue
        cash, units[symbol], entry[symbol], cost = fill(
            cash, held, entry.get(symbol, 0.0), after, price, order["cost_rate"]
        )
        traded = units[symbol] - held  # as fill traded it (a quantity order's sum may round)
        events.append(
            _fill(name, order["id"], symbol, traded, price, cost, cash, after, entry[symbol], "order")
        )
    return events


def _closed(kind: str, book: str, order: LedgerEvent, reason: str) -> LedgerEvent:
    return {"type": kind, "book": book, "id": order["id"], "symbol": order["symbol"], "reason": reason}


def _fill(
    book: str,
    order_id: str | None,
    symbol: str,
    traded: float,
    price: float,
    cost: float,
    cash: float,
    position: float,
    entry: float,
    reason: str,
) -> LedgerEvent:
    return {
        "type": "fill",
        "book": book,
        "id": order_id,
        "symbol": symbol,
        "units": finite(traded),
        "price": finite(price),
        "cost": finite(cost),
        "cash": finite(cash),
        "position": finite(position),
        "entry": finite(entry),
        "reason": reason,
    }


def mark(
    book: BookState, name: str, timestamp: str, day: str, closes: Mapping[str, float], borrow_rate: float
) -> LedgerEvent:
    """Value the book at the bar's closes, after the borrow fee of its shorts for the bar."""
    prices = {**book.prices, **closes}
    fee = sum(borrow_cost(u, prices[s], borrow_rate) for s, u in book.units.items() if u and s in closes)
    cash = book.cash - fee
    equity = cash + sum(_values(book.units, prices).values())
    return {
        "type": "mark",
        "book": name,
        "timestamp": timestamp,
        "day": day,
        "prices": {s: finite(p) for s, p in prices.items()},
        "units": {s: finite(u) for s, u in book.units.items()},
        "borrow": finite(fee),
        "cash": finite(cash),
        "equity": finite(equity),
    }


def flatten(book: BookState, name: str, rates: Mapping[str, float], reason: str) -> list[LedgerEvent]:
    """Close every position at its last mark (the kill switch acts on the close it saw)."""
    cash, events = book.cash, []
    for symbol in sorted(book.units):
        held = book.units[symbol]
        if not held:
            continue
        price = book.prices[symbol]
        cash, _, _, cost = fill(cash, held, 0.0, 0.0, price, rates.get(symbol, 0.0))
        events.append(_fill(name, None, symbol, -held, price, cost, cash, 0.0, 0.0, reason))
    return events


def halt(name: str, reason: str, cash: float) -> LedgerEvent:
    """The kill switch's last word on a book: why, and its equity once flat (all cash)."""
    return {"type": "halt", "book": name, "reason": reason, "equity": finite(cash)}


def new_order(
    order_id: str,
    book: str,
    symbol: str,
    kind: str,
    side: int,
    cost_rate: float,
    target_weight: float | None = None,
    quantity: float | None = None,
    limit: float | None = None,
    stop: float | None = None,
) -> LedgerEvent:
    """An ``order`` event, checked: exactly one of a target weight or a quantity, prices its kind needs."""
    if (target_weight is None) == (quantity is None):
        raise ValueError(f"order {order_id}: give exactly one of target_weight or quantity")
    if kind in ("limit", "stop_limit") and limit is None:
        raise ValueError(f"order {order_id}: a {kind} order needs a limit price")
    if kind in ("stop", "stop_limit") and stop is None:
        raise ValueError(f"order {order_id}: a {kind} order needs a stop price")
    if kind != "market" and side not in (1, -1):
        raise ValueError(f"order {order_id}: side must be +1 or -1, got {side}")
    return {
        "type": "order",
        "book": book,
        "id": order_id,
        "symbol": symbol,
        "kind": kind,
        "side": side,
        "target_weight": None if target_weight is None else finite(target_weight),
        "quantity": None if quantity is None else finite(quantity),
        "limit": None if limit is None else finite(limit),
        "stop": None if stop is None else finite(stop),
        "cost_rate": finite(cost_rate),
    }


def place(
    order_id: str,
    book: str,
    symbol: str,
    kind: str,
    target: float,
    current: float,
    bar: Bar,
    cost_rate: float,
    limit_offset: float,
    stop_offset: float,
    units: float | None = None,
) -> LedgerEvent:
    """The order of the configured kind that moves ``symbol`` from weight ``current`` to ``target``.

    ``units`` given (``paper.sizing: units``): a whole number of units, sized at the decision
    close as a broker takes orders, instead of a target weight sized at the fill price.
    Offsets are fractions of the decision bar's close: a limit buys below (sells above) it; a stop
    buys above (sells below) it; a stop-limit's limit lies ``limit_offset`` beyond its stop.
    """
    side = 1 if (target > current if units is None else units > 0) else -1
    limit = stop = None
    if kind == "limit":
        limit = bar.close * (1 - side * limit_offset)
    elif kind in ("stop", "stop_limit"):
        stop = bar.close * (1 + side * stop_offset)
        if kind == "stop_limit":
            limit = stop * (1 + side * limit_offset)
    weight = target if units is None else None
    return new_order(order_id, book, symbol, kind, side, cost_rate, weight, units, limit, stop)
