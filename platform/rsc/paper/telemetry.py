"""What one ledger segment tells Datadog: ``rsc.paper.*`` metrics, service checks and events.

Tags come from bounded sets only: the strategy, the book (``champion`` / ``challenger``), the model
version, the traded symbols, an order's status and an error's kind; never order ids or timestamps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rsc.monitor import Event, Metric, ServiceCheck, names
from rsc.monitor.drift import Drift
from rsc.monitor.sink import Item
from rsc.paper.state import LedgerEvent, PaperState

if TYPE_CHECKING:
    from rsc.paper.decay import Decay

ALERT_TYPES = {"ok": "success", "warning": "warning", "critical": "error", "unknown": "info"}
ORDER_STATUS = {"order": "placed", "fill": "filled", "reject": "rejected", "expire": "expired"}


def book_tags(state: PaperState, book: str) -> dict[str, str]:
    version = state.books[book].model_version
    return {
        "strategy": str(state.start.get("strategy", "")),
        "book": book,
        "model_version": str(version) if version is not None else "none",
    }


def segment_items(state: PaperState, events: Sequence[LedgerEvent]) -> list[Item]:
    """Metrics of the books after the segment, plus what its events counted or announced."""
    strategy = str(state.start.get("strategy", ""))
    items: list[Item] = []
    marked = {event["book"] for event in events if event["type"] == "mark"}
    for name in sorted(marked):
        book, tags = state.books[name], book_tags(state, name)
        items += [
            Metric(names.PAPER_EQUITY, book.equity, "gauge", tags),
            Metric(names.PAPER_PNL, book.pnl, "gauge", tags),
            Metric(names.PAPER_DRAWDOWN, book.drawdown, "gauge", tags),
        ]
        for symbol in sorted(book.prices):
            items.append(
                Metric(names.PAPER_POSITION, book.weight(symbol), "gauge", {**tags, "symbol": symbol})
            )
    orders = Counter(
        (event["book"], ORDER_STATUS[event["type"]])
        for event in events
        if event["type"] in ORDER_STATUS and event.get("id") is not None
    )
    for (name, status), count in sorted(orders.items()):
        items.append(Metric(names.PAPER_ORDERS, count, "count", {**book_tags(state, name), "status": status}))
    for event in events:
        if event["type"] == "decision" and event["status"] == "ok":
            tags = book_tags(state, event["book"])
            items.append(Metric(names.PAPER_DECISION_LATENCY, event["latency_ms"], "histogram", tags))
        elif event["type"] == "decision" and event.get("error"):
            tags = {**book_tags(state, event["book"]), "kind": "model"}
            items.append(Metric(names.PAPER_ERRORS, 1, "count", tags))
        elif event["type"] == "guard":
            items.append(guard_event(strategy, event))
        elif event["type"] == "shadow":
            verdict = "promoted" if event["promote"] else "refused"
            items.append(
                Event(
                    f"rsc paper: challenger v{event['version']} {verdict} after {event['bars']} shadow bars",
                    event["reason"],
                    "success" if event["promote"] else "warning",
                    {"strategy": strategy, "model_version": str(event["version"])},
                    f"rsc-paper-shadow-{strategy}",
                )
            )
        elif event["type"] == "halt":
            items.append(
                Event(
                    f"rsc paper: kill switch on {strategy} ({event['book']})",
                    f"Flattened and stopped: {event['reason']}",
                    "error",
                    book_tags(state, event["book"]),
                    f"rsc-paper-risk-{strategy}",
                )
            )
    return items


def guard_event(strategy: str, event: LedgerEvent) -> Event:
    check, status = event["check"], event["status"]
    return Event(
        f"rsc paper: {check} {status} on {strategy}",
        event["message"] or f"{check} is {status}",
        ALERT_TYPES[status],  # type: ignore[arg-type]
        {"strategy": strategy, "check": check},
        f"rsc-paper-{check}-{strategy}",
    )


def service_checks(state: PaperState) -> list[ServiceCheck]:
    """The current state of every check, sent each bar so that Datadog sees the trader is alive."""
    strategy = str(state.start.get("strategy", ""))
    checks = []
    for check, name in names.CHECKS.items():
        guard = state.guards.get(check, {"status": "ok", "message": ""})
        checks.append(ServiceCheck(name, guard["status"], guard["message"], {"strategy": strategy}))
    return checks


def drift_items(state: PaperState, drift: Sequence[Drift]) -> list[Item]:
    strategy = str(state.start.get("strategy", ""))
    items: list[Item] = []
    for row in drift:
        tags = {"strategy": strategy, "feature": row.feature}
        items += [
            Metric(names.PAPER_DRIFT_PSI, row.psi, "gauge", tags),
            Metric(names.PAPER_DRIFT_KS, row.ks, "gauge", tags),
        ]
    return items


def decay_items(state: PaperState, decay: Decay) -> list[Item]:
    tags = {"strategy": str(state.start.get("strategy", "")), "model_version": str(decay.version)}
    figures = [
        (names.PAPER_DECAY_SHARPE, decay.sharpe),
        (names.PAPER_DECAY_BACKTEST_SHARPE, decay.backtest.sharpe),
        (names.PAPER_DECAY_DRAWDOWN, decay.drawdown),
    ]
    if decay.psr == decay.psr:  # NaN: no probability for a degenerate record
        figures.append((names.PAPER_DECAY_PSR, decay.psr))
    return [Metric(name, value, "gauge", tags) for name, value in figures]
