"""The simulated broker with small hand-computed numbers: fill prices of every order kind, costs,
cash and position accounting, rejections, several symbols, and the env's own fill arithmetic."""

from __future__ import annotations

import pytest

from rsc.core.execution import fill, order_fill_price
from rsc.paper.broker import Bar, Limits, execute, flatten, mark, new_order, place
from rsc.paper.state import BookState, PaperState, apply

BAR = Bar(open=100.0, high=105.0, low=95.0, close=102.0, volume=1.0)
LOOSE = Limits(max_position=3.0, max_leverage=3.0)


@pytest.mark.parametrize(
    ("kind", "side", "limit", "stop", "price"),
    [
        ("market", 1, None, None, 100.0),
        ("market", -1, None, None, 100.0),
        ("limit", 1, 98.0, None, 98.0),  # the low reaches the limit
        ("limit", 1, 101.0, None, 100.0),  # opens below the limit: the better price
        ("limit", 1, 94.0, None, None),  # never that low
        ("limit", -1, 103.0, None, 103.0),
        ("limit", -1, 99.0, None, 100.0),
        ("limit", -1, 106.0, None, None),
        ("stop", 1, None, 102.0, 102.0),  # the high reaches the stop
        ("stop", 1, None, 99.0, 100.0),  # gaps through it: fills at the open
        ("stop", 1, None, 106.0, None),
        ("stop", -1, None, 97.0, 97.0),
        ("stop", -1, None, 101.0, 100.0),
        ("stop", -1, None, 94.0, None),
        ("stop_limit", 1, 103.0, 102.0, 102.0),  # triggers at 102, within the limit
        ("stop_limit", 1, 101.0, 102.0, None),  # triggers above the limit: assumed not to come back
        ("stop_limit", 1, 101.0, 99.0, 100.0),  # gap trigger at the open, within the limit
        ("stop_limit", 1, 99.5, 99.0, None),  # gap trigger beyond the limit
        ("stop_limit", -1, 96.0, 97.0, 97.0),
        ("stop_limit", -1, 99.0, 101.0, 100.0),
        ("stop_limit", -1, 98.0, 94.0, None),  # never triggered
    ],
)
def test_order_fill_price(kind, side, limit, stop, price):
    assert order_fill_price(kind, side, limit, stop, BAR.open, BAR.high, BAR.low) == price


def test_order_fill_price_rejects_incomplete_orders():
    with pytest.raises(ValueError, match="unknown order kind 'iceberg'"):
        order_fill_price("iceberg", 1, None, None, 1, 1, 1)
    with pytest.raises(ValueError, match="needs a limit price"):
        order_fill_price("limit", 1, None, None, 1, 1, 1)
    with pytest.raises(ValueError, match="needs a stop price"):
        order_fill_price("stop_limit", -1, 1.0, None, 1, 1, 1)
    with pytest.raises(ValueError, match="side must be"):
        order_fill_price("stop", 0, None, 1.0, 1, 1, 1)
    with pytest.raises(ValueError, match="exactly one of target_weight or quantity"):
        new_order("x", "champion", "A", "market", 1, 0.0, target_weight=0.5, quantity=3.0)


def book(cash: float = 10_000.0, **positions: float) -> BookState:
    state = BookState.new(cash)
    for symbol, units in positions.items():
        state.units[symbol], state.entry[symbol], state.prices[symbol] = units, 100.0, 100.0
    state.equity = cash + sum(u * 100.0 for u in positions.values())
    return state


def apply_to(state: BookState, event: dict) -> None:
    """Apply a broker event to a lone book (the ledger's own apply, on a one-book state)."""
    apply(PaperState(books={"champion": state}), event)


def submit(state: BookState, *orders: dict) -> None:
    for order in orders:
        apply_to(state, order)


def test_market_order_hand_computed_and_equal_to_the_env_fill():
    # 10,000 equity, 50% long at the open 100 with 10 bps: 50 units, cost 5, cash 4,995.
    state = book()
    submit(state, new_order("o1", "champion", "A", "market", 1, 0.001, target_weight=0.5))
    (event,) = execute(state, "champion", {"A": BAR}, LOOSE)
    assert event["type"] == "fill" and event["id"] == "o1"
    assert event["units"] == pytest.approx(50.0) and event["price"] == 100.0
    assert event["cost"] == pytest.approx(5.0) and event["cash"] == pytest.approx(4_995.0)
    sized = 0.5 * 10_000.0 / 100.0  # the env sizes a 0.5 weight on its equity at the fill price
    assert (event["cash"], event["position"], event["entry"], event["cost"]) == fill(
        10_000.0, 0.0, 0.0, sized, 100.0, 0.001
    )
    apply_to(state, event)
    assert state.pending == [] and state.units["A"] == event["position"] and state.fills == 1
    marked = mark(state, "champion", "t", "d", {"A": BAR.close}, 0.0)
    assert marked["equity"] == pytest.approx(4_995.0 + 50 * 102.0)
    assert marked["cash"] + marked["units"]["A"] * marked["prices"]["A"] == pytest.approx(marked["equity"])


def test_limit_order_fills_at_its_limit_and_pays_costs_on_that_price():
    state = book()
    submit(
        state, place("o1", "champion", "A", "limit", 1.0, 0.0, Bar(100, 100, 100, 100, 1), 0.001, 0.02, 0.0)
    )
    assert state.pending[0]["limit"] == pytest.approx(98.0)  # 2% below the decision close
    (event,) = execute(state, "champion", {"A": BAR}, LOOSE)
    assert event["price"] == pytest.approx(98.0)
    assert event["units"] == pytest.approx(10_000 / 98.0)
    assert event["cost"] == pytest.approx(10.0)  # 10,000 notional at 10 bps
    assert event["cash"] == pytest.approx(-10.0)  # all in: the costs overdraw, as in the env


def test_unreached_orders_expire_and_leave_the_book_alone():
    state = book()
    decided = Bar(100, 100, 100, 100, 1)
    submit(
        state,
        place("o1", "champion", "A", "stop_limit", 1.0, 0.0, decided, 0.001, 0.005, 0.08),  # stop 108
        place("o2", "champion", "B", "limit", 0.5, 0.0, decided, 0.001, 0.10, 0.0),  # limit 90
    )
    events = execute(state, "champion", {"A": BAR, "B": BAR}, LOOSE)
    assert [(e["type"], e["id"], e["reason"]) for e in events] == [
        ("expire", "o1", "price not reached"),
        ("expire", "o2", "price not reached"),
    ]
    for event in events:
        apply_to(state, event)
    assert state.pending == [] and state.cash == 10_000.0 and state.fills == 0


@pytest.mark.parametrize(
    ("limits", "positions", "order", "reason"),
    [
        (Limits(0.5, 1.0), {}, {"quantity": 60.0}, "max_position: weight 0.6000 above 0.5"),
        (Limits(2.0, 1.0), {}, {"quantity": 120.0}, "insufficient cash: needs 12012.00, has 10000.00"),
        (
            Limits(2.0, 2.0),
            {},
            {"quantity": 199.9},
            "insufficient cash",
        ),  # margin covers 200 but not the cost
        (Limits(1.0, 1.0), {"B": 50.0}, {"quantity": -60.0}, "max_leverage: gross exposure 1.1000 above 1.0"),
        (Limits(0.5, 1.0), {}, {"target_weight": 0.8}, "max_position: weight 0.8000 above 0.5"),
    ],
)
def test_rejections_name_the_limit(limits, positions, order, reason):
    state = book(10_000.0 - 100.0 * sum(positions.values()), **positions)
    side = 1 if order.get("quantity", order.get("target_weight")) > 0 else -1
    submit(state, new_order("o1", "champion", "A", "market", side, 0.001, **order))
    (event,) = execute(state, "champion", {"A": BAR, "B": BAR}, limits)
    assert event["type"] == "reject" and event["reason"].startswith(reason)
    apply_to(state, event)
    assert state.rejects == 1 and state.pending == []


def test_sells_fill_before_buys_so_a_rotation_is_paid_for():
    state = book(0.0, A=100.0)  # all in A: no cash
    submit(
        state,
        new_order("buy", "champion", "B", "market", 1, 0.001, quantity=40.0),
        new_order("sell", "champion", "A", "market", -1, 0.001, quantity=-50.0),
    )
    events = execute(state, "champion", {"A": BAR, "B": BAR}, Limits(1.0, 1.0))
    assert [(e["type"], e["id"]) for e in events] == [("fill", "sell"), ("fill", "buy")]
    assert events[0]["cash"] == pytest.approx(5_000 - 5)
    assert events[1]["cash"] == pytest.approx(5_000 - 5 - 4_000 - 4)
    for event in events:
        apply_to(state, event)
    assert state.units == {"A": 50.0, "B": 40.0}


def test_cash_plus_positions_change_only_by_pnl_minus_costs():
    state = book()
    submit(
        state,
        new_order("a", "champion", "A", "market", 1, 0.002, target_weight=0.4),
        new_order("b", "champion", "B", "market", -1, 0.002, target_weight=-0.3),
    )
    bars = {"A": BAR, "B": Bar(50.0, 52.0, 49.0, 51.0, 1.0)}
    events = execute(state, "champion", bars, Limits(1.0, 1.0))
    for event in events:
        apply_to(state, event)
    marked = mark(state, "champion", "t", "d", {s: b.close for s, b in bars.items()}, 0.0)
    costs = sum(e["cost"] for e in events)
    pnl = state.units["A"] * (102.0 - 100.0) + state.units["B"] * (51.0 - 50.0)
    assert marked["equity"] == pytest.approx(10_000.0 + pnl - costs)
    assert state.units["B"] < 0 and state.entry["B"] == 50.0


def test_borrow_fee_on_shorts_and_the_kill_switch_flattens_at_the_close():
    state = book(20_000.0, A=-100.0)  # short 100 A (10,000 of proceeds in the cash)
    marked = mark(state, "champion", "t", "d", {"A": 110.0}, 0.001)
    assert marked["borrow"] == pytest.approx(100 * 110.0 * 0.001)
    assert marked["equity"] == pytest.approx(20_000.0 - 11.0 - 100 * 110.0)
    apply_to(state, marked)
    (event,) = flatten(state, "champion", {"A": 0.001}, "kill_switch")
    assert event["units"] == 100.0 and event["price"] == 110.0 and event["position"] == 0.0
    assert event["cash"] == pytest.approx(marked["cash"] - 11_000.0 - 11.0)
    assert event["reason"] == "kill_switch" and event["id"] is None


def test_units_sizing_places_whole_units():
    order = place("o", "champion", "A", "market", 0.5, 0.0, BAR, 0.001, 0.0, 0.0, units=49.0)
    assert order["quantity"] == 49.0 and order["target_weight"] is None and order["side"] == 1
