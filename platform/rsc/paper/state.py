"""The paper trader's state and the one function that advances it: :func:`apply` of a ledger event.

The live loop and a restart both build the state the same way, by applying events in ledger order,
so a resumed run holds exactly the numbers an uninterrupted one would (the events carry the balances
after each fill and mark, and JSON keeps every float exactly). A state is plain data: it round-trips
through JSON for snapshots.

Events (dicts with a ``type``):

``start``  ``{books: {name: initial cash}, symbols, strategy, costs...}``: the first event of a ledger.
``bar``    ``{timestamp, bars: {symbol: {open, high, low, close, volume}}}``: opens each bar's segment.
``order``  ``{book, id, symbol, kind, side, target_weight | quantity, limit, stop, cost_rate}``.
``fill``   ``{book, id, symbol, units (traded), price, cost, cash, position, entry, reason}``: balances after.
``reject`` / ``expire``  ``{book, id, symbol, reason}``: the order is gone without a fill.
``mark``   ``{book, timestamp, day, prices, borrow, cash, equity}``: the book valued at the bar's close.
``decision``  ``{book, symbol, status (ok | hold), target, ...}``: what the model asked for, or why not.
``halt``   ``{book, reason, equity}``: a kill switch flattened the book; it trades no more.
``guard``  ``{check, status, message}``: a service check changed state (risk, model, data, drift, decay).
``shadow`` ``{version, bars, challenger_return, champion_return, promote, reason}``: the gate's decision
           on a challenger back from its shadow bars.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LedgerEvent = dict[str, Any]


@dataclass
class BookState:
    """One book (``champion`` trades; ``challenger`` shadows): cash, positions and their marks."""

    initial_cash: float
    cash: float
    units: dict[str, float] = field(default_factory=dict)
    entry: dict[str, float] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)  # last close of each symbol
    equity: float = 0.0
    peak: float = 0.0
    day: str | None = None  # date of the last mark
    day_start: float = 0.0  # equity when `day` began (the previous day's last mark)
    pending: list[LedgerEvent] = field(default_factory=list)  # orders placed, to fill on the next bar
    halted: str | None = None
    fills: int = 0
    rejects: int = 0
    costs: float = 0.0
    model_version: int | None = None
    version_bars: int = 0  # bars marked since model_version began deciding for this book
    version_start: dict[str, float] = field(default_factory=dict)  # every book's equity at that moment

    @classmethod
    def new(cls, cash: float) -> BookState:
        return cls(cash, cash, equity=cash, peak=cash, day_start=cash)

    @property
    def pnl(self) -> float:
        return self.equity - self.initial_cash

    @property
    def drawdown(self) -> float:
        """Fraction below the equity peak (0 at a new high)."""
        return 1.0 - self.equity / self.peak if self.peak > 0 else 0.0

    @property
    def daily_loss(self) -> float:
        """Fraction lost since the day began (negative on a winning day)."""
        return 1.0 - self.equity / self.day_start if self.day_start > 0 else 0.0

    def weight(self, symbol: str) -> float:
        """Position value over equity at the last marks."""
        value = self.units.get(symbol, 0.0) * self.prices.get(symbol, 0.0)
        return value / self.equity if self.equity > 0 else 0.0

    def unrealised(self, symbol: str) -> float:
        """Return of the open position since its average entry (0 when flat), as the env observes it."""
        units, entry = self.units.get(symbol, 0.0), self.entry.get(symbol, 0.0)
        price = self.prices.get(symbol)
        if not units or entry <= 0 or price is None:
            return 0.0
        return price / entry - 1.0 if units > 0 else 1.0 - price / entry


@dataclass
class PaperState:
    seq: int = 0  # ledger segments applied; the next segment's number
    timestamp: str | None = None  # the last bar processed
    start: LedgerEvent = field(default_factory=dict)
    books: dict[str, BookState] = field(default_factory=dict)
    decisions: dict[str, LedgerEvent] = field(default_factory=dict)  # "<book>/<symbol>" -> last decision
    guards: dict[str, LedgerEvent] = field(default_factory=dict)  # check -> {status, message}
    shadows: dict[str, LedgerEvent] = field(default_factory=dict)  # challenger version -> gate decision

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaperState:
        books = {name: BookState(**book) for name, book in data["books"].items()}
        return cls(**{**data, "books": books})

    def guard(self, check: str) -> str:
        return self.guards.get(check, {}).get("status", "ok")


def _pending_without(book: BookState, order_id: str | None) -> list[LedgerEvent]:
    return [order for order in book.pending if order["id"] != order_id]


def apply(state: PaperState, event: LedgerEvent) -> None:
    """Advance ``state`` by one ledger event (in place)."""
    kind = event["type"]
    book = state.books.get(event.get("book", ""))
    if kind == "start":
        state.start = dict(event)
        state.books = {name: BookState.new(float(cash)) for name, cash in event["books"].items()}
    elif kind == "bar":
        state.timestamp = event["timestamp"]
    elif kind == "order":
        book.pending.append(dict(event))
    elif kind == "fill":
        book.pending = _pending_without(book, event.get("id"))
        book.cash = event["cash"]
        book.units[event["symbol"]] = event["position"]
        book.entry[event["symbol"]] = event["entry"]
        book.fills += 1
        book.costs += event["cost"]
    elif kind in ("reject", "expire"):
        book.pending = _pending_without(book, event["id"])
        book.rejects += kind == "reject"
    elif kind == "mark":
        book.prices.update(event["prices"])
        book.cash = event["cash"]
        book.costs += event["borrow"]
        if event["day"] != book.day:
            book.day, book.day_start = event["day"], book.equity
        book.equity = event["equity"]
        book.peak = max(book.peak, book.equity)
        book.version_bars += 1
    elif kind == "decision":
        # Latency is a fact of one run's wall clock, not of the trading; the state leaves it out.
        kept = {key: value for key, value in event.items() if key != "latency_ms"}
        state.decisions[f"{event['book']}/{event['symbol']}"] = kept
        version = event.get("model_version")
        if version is not None and version != book.model_version:
            book.model_version, book.version_bars = version, 0
            book.version_start = {name: other.equity for name, other in state.books.items()}
    elif kind == "halt":
        book.halted, book.equity = event["reason"], event["equity"]
        book.pending = []
    elif kind == "guard":
        state.guards[event["check"]] = {"status": event["status"], "message": event["message"]}
    elif kind == "shadow":
        state.shadows[str(event["version"])] = {k: v for k, v in event.items() if k != "type"}
    else:
        raise ValueError(f"unknown ledger event type {kind!r}")


def apply_segment(state: PaperState, seq: int, events: list[LedgerEvent]) -> None:
    """Advance ``state`` by ledger segment ``seq`` (which must be the next one)."""
    if seq != state.seq:
        raise ValueError(f"ledger segment {seq} applied to a state that expects segment {state.seq}")
    for event in events:
        apply(state, event)
    state.seq = seq + 1


def finite(value: float) -> float:
    """A float fit for the ledger (JSON has no NaN or infinity)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value} cannot enter the ledger")
    return value
