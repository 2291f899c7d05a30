"""The paper trader: each new bar fills the orders placed on the one before, marks the books, checks
the risk limits, asks the model and places new orders; the bar's events reach the ledger before the
trader's state moves on (see :mod:`rsc.paper.ledger` for why that makes a crash harmless).

Per bar, in this order: the ``bar`` event; for each book, the ``fill`` / ``reject`` / ``expire`` of
its pending orders at this bar's prices, the ``mark`` at the close, and, when a kill switch fires,
the flattening fills at the close and ``halt``; then, for each book still trading, one ``decision``
per symbol (or a hold, with the reason) and the ``order`` that moves toward the target; changes of
the service checks as ``guard`` events. The ``challenger`` book, when there is one, runs beside the
``champion`` on the same bars and the same broker; it never stops the trader. A challenger waiting for
its shadow record (``registry.shadow_bars``) gets the gate's decision once it has traded that many bars
(a ``shadow`` event; the gate promotes it or not in MLflow).

The decay watch (:mod:`rsc.paper.decay`) holds the champion's live record against its backtest every
``monitor.decay_every`` bars; a ``decay`` or ``drift`` check that turns to warning calls ``on_alert``
(which may start a challenger run) once the bar is committed.

Guards: stale data (a live bar that arrives too late) holds decisions but still fills and marks;
an unavailable model is retried with exponential backoff within the bar, then the book holds and
the model check goes critical until a decision succeeds again.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from rsc.config import Settings
from rsc.env.costs import env_costs
from rsc.monitor import MetricsSink, NullSink
from rsc.monitor.drift import Drift
from rsc.paper import broker, telemetry
from rsc.paper import risk as risk_rules
from rsc.paper.decisions import INDICATOR_LOOKBACK, DecisionSource, DecisionUnavailable, ModelDecision
from rsc.paper.drift import DriftWatch
from rsc.paper.feeds import Feed, Step
from rsc.paper.history import History
from rsc.paper.ledger import Ledger, LedgerError
from rsc.paper.state import BookState, LedgerEvent, PaperState, apply, apply_segment, finite
from rsc.registry.gate import ShadowRecord

if TYPE_CHECKING:  # the decay watch loads scipy: only a trader that watches decay imports it
    from rsc.paper.decay import Decay, DecayWatch

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
ALERTING_CHECKS = ("decay", "drift")  # a change to warning calls on_alert
SHADOW_RECHECK = 10  # segments between asking the registry again whether a challenger is in shadow


@dataclass(frozen=True)
class PaperOutcome:
    ledger_uri: str
    state: PaperState
    bars: int  # bars this run processed
    stopped: str  # "end of feed", "stop requested", "max bars", or "halted: <reason>"


class _Ask(NamedTuple):
    """One decision request's result: a decision, or why there is none (``error``: the model failed)."""

    decision: ModelDecision | None
    latency_ms: float = 0.0
    reason: str = ""
    error: bool = False


class ShadowGate(Protocol):
    """The registry's side of a shadow: how many bars a version waits for, and the final decision."""

    def bars_for(self, version: int) -> int | None: ...

    def decide(self, record: ShadowRecord) -> tuple[bool, str]: ...


class PaperTrader:
    def __init__(
        self,
        cfg: Settings,
        feed: Feed,
        ledger: Ledger,
        champion: DecisionSource,
        challenger: DecisionSource | None = None,
        sink: MetricsSink | None = None,
        drift: DriftWatch | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar_times: np.ndarray | None = None,
        decay: DecayWatch | None = None,
        shadow: ShadowGate | None = None,
        on_alert: Callable[[str, str], None] | None = None,
    ):
        """``bar_times``: the timestamps of the bars the policy trained on (their spacing sets the
        borrow fee's accrual per bar unless ``env.periods_per_year`` is set). ``on_alert(check,
        message)``: called when the decay or drift check turns to warning."""
        self.cfg, self.paper, self.feed, self.ledger = cfg, cfg.paper, feed, ledger
        self.sink, self.drift, self.clock = sink or NullSink(), drift, clock
        self.decay, self.shadow, self.on_alert = decay, shadow, on_alert
        # challenger version -> (shadow bars it waits for, or None: not in shadow; the segment asked at)
        self._shadow_bars: dict[int, tuple[int | None, int]] = {}
        self._live: tuple[int | None, list[float]] = (None, [])  # the champion version and its marks
        self._decay_version: int | None = None  # the champion version the decay check speaks of
        self.symbols = tuple(cfg.paper.symbols or cfg.data.symbols)
        self.costs = env_costs(cfg.env, np.asarray([] if bar_times is None else bar_times))
        self.limits = broker.Limits(cfg.paper.risk.max_position, cfg.paper.risk.max_leverage)
        self.sources: dict[str, DecisionSource] = {CHAMPION: champion}
        if challenger is not None:
            self.sources[CHALLENGER] = challenger
        self.stale_after = risk_rules.stale_after_s(cfg.paper.risk, feed.interval_s) if feed.live else None
        self.delays = risk_rules.backoff_delays(
            cfg.paper.risk.model_retries, cfg.paper.risk.model_backoff_s, cfg.paper.risk.model_backoff_max_s
        )
        self.stop_requested = threading.Event()
        self.history = History()
        self._min_bars: dict[str, tuple[int, int | None]] = {}  # book -> (min_bars, model version seen)
        self._last_bar_at = clock()

    def request_stop(self) -> None:
        """Finish the bar in hand, commit it, and return (a SIGTERM handler calls this)."""
        self.stop_requested.set()

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, max_bars: int | None = None) -> PaperOutcome:
        state = self._open()
        if state.books[CHAMPION].halted:
            return PaperOutcome(self.ledger.uri, state, 0, f"halted: {state.books[CHAMPION].halted}")
        after = pd.Timestamp(state.timestamp) if state.timestamp else None
        self.history.extend(self.feed.history(after))
        self._last_bar_at = self.clock()
        done, stopped = 0, "end of feed"
        for step in self.feed.steps(after, self.stop_requested.wait):
            if self.stop_requested.is_set():
                stopped = "stop requested"
                break
            if step is None:
                state = self._idle(state)
                continue
            if state.timestamp is not None and step.timestamp <= pd.Timestamp(state.timestamp):
                log.warning("paper: bar %s is not after %s; skipped", step.timestamp, state.timestamp)
                continue
            state = self._bar(state, step)
            done += 1
            if state.books[CHAMPION].halted:
                stopped = f"halted: {state.books[CHAMPION].halted}"
                break
            if max_bars is not None and done >= max_bars:
                stopped = "max bars"
                break
        log.info("paper: %d bars this run (%s); ledger %s", done, stopped, self.ledger.uri)
        return PaperOutcome(self.ledger.uri, state, done, stopped)

    def _open(self) -> PaperState:
        """The ledger's state, or a new ledger whose segment 0 records how it was started."""
        books = {name: float(self.cfg.env.initial_cash) for name in self.sources}
        state = self.ledger.load()
        if state is None:
            start = {
                "type": "start",
                "strategy": self.paper.strategy,
                "symbols": list(self.symbols),
                "books": books,
                "order_type": self.paper.order_type,
                "costs": self.costs._asdict(),
                "risk": self.paper.risk.model_dump(mode="json"),
            }
            self.ledger.append(0, [start])
            state = PaperState()
            apply_segment(state, 0, [start])
            return state
        if state.start.get("symbols") != list(self.symbols) or state.start.get("books") != books:
            raise LedgerError(
                f"{self.ledger.uri} was started with symbols {state.start.get('symbols')} and books "
                f"{state.start.get('books')}, not {list(self.symbols)} and {books}: use another paper.session"
            )
        log.info(
            "paper: resuming %s after segment %d (bar %s)", self.ledger.uri, state.seq - 1, state.timestamp
        )
        if self.decay is not None:  # the live record so far, from the latest segments (one bar each)
            version = None
            tail = self.ledger.segments()[-2 * (self.cfg.monitor.decay_window + 1) :]
            for event in (event for seq in tail for event in self.ledger.read(seq)):
                if event.get("book") != CHAMPION:
                    continue
                if event["type"] == "decision" and event.get("model_version") is not None:
                    version = event["model_version"]
                elif event["type"] == "mark":
                    self._mark_live(version, event["equity"])
            self._decay_version = self._live[0]  # the decay check already speaks of this version
        return state

    def _commit(
        self, state: PaperState, work: PaperState, events: list[LedgerEvent], extra: list[Any]
    ) -> PaperState:
        """Write the segment, then let the state move on, then tell Datadog."""
        self.ledger.append(state.seq, events)
        work.seq = state.seq + 1
        if work.seq % self.paper.snapshot_every == 0:
            self.ledger.write_snapshot(work)
        for item in [*telemetry.segment_items(work, events), *telemetry.service_checks(work), *extra]:
            self.sink.send(item)
        for event in events:
            alerted = event["type"] == "guard" and event["check"] in ALERTING_CHECKS
            if alerted and event["status"] == "warning" and self.on_alert is not None:
                try:
                    self.on_alert(event["check"], event["message"])
                except Exception as error:  # an alert that cannot act never stops the trading
                    log.error("paper: the %s alert could not start its action: %s", event["check"], error)
        return work

    def _idle(self, state: PaperState) -> PaperState:
        """A poll without a new bar: the stale-data check, and the service checks as a heartbeat."""
        waited = self.clock() - self._last_bar_at
        if self.stale_after is None or waited <= self.stale_after or state.guard("data") == "warning":
            for check in telemetry.service_checks(state):
                self.sink.send(check)
            return state
        work, events = copy.deepcopy(state), []
        event = {
            "type": "guard",
            "check": "data",
            "status": "warning",
            "message": f"no new bar for {waited:.0f}s (limit {self.stale_after:.0f}s)",
        }
        apply(work, event)
        events.append(event)
        return self._commit(state, work, events, [])

    def _bar(self, state: PaperState, step: Step) -> PaperState:
        work, events = copy.deepcopy(state), []

        def emit(event: LedgerEvent) -> None:
            apply(work, event)
            events.append(event)

        stamp = str(step.timestamp)
        bars = {s: {k: finite(v) for k, v in bar._asdict().items()} for s, bar in sorted(step.bars.items())}
        emit({"type": "bar", "timestamp": stamp, "bars": bars})
        self.history.add(step)
        self._last_bar_at = self.clock()
        stale = self.stale_after is not None and step.age_s > self.stale_after
        stale_note = (
            f"bar {stamp} arrived {step.age_s:.0f}s after it ended (limit {self.stale_after}s); holding"
        )
        self._guard(work, emit, "data", "warning" if stale else "ok", stale_note if stale else "")
        closes = {symbol: bar.close for symbol, bar in step.bars.items()}
        rates = {
            symbol: broker.order_cost_rate(self.costs.rate, bar, self.costs.spread_factor)
            for symbol, bar in step.bars.items()
        }
        day = str(step.timestamp.date())
        for name in self.sources:
            book = work.books[name]
            if book.halted:
                continue
            for event in broker.execute(book, name, step.bars, self.limits):
                emit(event)
            emit(broker.mark(book, name, stamp, day, closes, self.costs.borrow_rate_per_bar))
            if name == CHAMPION:
                self._mark_live(book.model_version, book.equity)
            reason = risk_rules.breach(book, self.paper.risk)
            if reason:
                log.error("paper: kill switch on %s: %s", name, reason)
                for event in broker.flatten(book, name, rates, "kill_switch"):
                    emit(event)
                emit(broker.halt(name, reason, book.cash))
                if name == CHAMPION:
                    self._guard(work, emit, "risk", "critical", f"kill switch: {reason}")
        for name, source in self.sources.items():
            if not work.books[name].halted:
                self._decide(work, emit, name, source, step, rates, stale)
        self._conclude_shadow(work, emit, state.seq)
        drift = self._drift(work, emit, state.seq)
        decay = self._decay(work, emit, state.seq)
        extra = [
            *(telemetry.drift_items(work, drift) if drift else []),
            *(telemetry.decay_items(work, decay) if decay else []),
        ]
        return self._commit(state, work, events, extra)

    # -- decisions and orders ---------------------------------------------------------------------
    def _decide(
        self,
        work: PaperState,
        emit: Callable[[LedgerEvent], None],
        name: str,
        source: DecisionSource,
        step: Step,
        rates: dict[str, float],
        stale: bool,
    ) -> None:
        book, stamp = work.books[name], str(step.timestamp)
        asked: dict[str, _Ask] = {}
        failure: _Ask | None = None
        if self.cfg.env.kind == "portfolio":  # one question for every symbol: weights back
            # every symbol's latest window, also of a symbol with no bar now (another calendar)
            asked = self._ask_weights(name, source, book, sorted(self.symbols), stale)
            failure = next((a for a in asked.values() if a.error), None)
        else:
            for symbol in sorted(step.bars):
                if stale:
                    asked[symbol] = _Ask(None, reason="stale data")
                elif failure is not None:  # the model already failed this bar: no more retries
                    asked[symbol] = _Ask(None, reason=failure.reason, error=True)
                else:
                    previous = work.decisions.get(f"{name}/{symbol}", {})
                    asked[symbol] = self._ask(name, source, symbol, book, previous)
                    failure = asked[symbol] if asked[symbol].error else None
        targets = risk_rules.limit_targets(
            {s: a.decision.target_position for s, a in asked.items() if a.decision is not None},
            self.limits.max_position,
            self.limits.max_leverage,
        )
        for symbol, ask in asked.items():
            event = {
                "type": "decision",
                "book": name,
                "symbol": symbol,
                "timestamp": stamp,
                "position": finite(book.weight(symbol)),
            }
            if ask.decision is None:
                # A hold keeps a recurrent model's state (and the version it belongs to) for the next bar.
                previous = work.decisions.get(f"{name}/{symbol}", {})
                kept = {
                    k: previous[k] for k in ("state", "model_version") if previous.get("state") is not None
                }
                emit({**event, "status": "hold", "reason": ask.reason, "error": ask.error, **kept})
                continue
            decision = ask.decision
            emit(
                {
                    **event,
                    "status": "ok",
                    "action": decision.action,
                    "target_position": finite(decision.target_position),
                    "target": finite(targets[symbol]),
                    "model_name": decision.model_name,
                    "model_version": decision.model_version,
                    "latency_ms": finite(ask.latency_ms),
                    **({"state": decision.state} if decision.state is not None else {}),
                }
            )
        if name == CHAMPION and not stale:
            status = "critical" if failure is not None else "ok"
            self._guard(work, emit, "model", status, failure.reason if failure is not None else "")
        for symbol, target in targets.items():
            if symbol not in step.bars:  # no bar of it now: nothing to fill an order against
                continue
            current = book.weight(symbol)
            if abs(target - current) <= self.paper.rebalance_band:  # band 0: skip only an unchanged weight
                continue
            units = None
            if self.paper.sizing == "units":
                close = step.bars[symbol].close
                units = float(math.trunc(target * book.equity / close) - book.units.get(symbol, 0.0))
                if not units:
                    continue
            order = broker.place(
                f"{name}-{work.seq}-{symbol}",
                name,
                symbol,
                self.paper.order_type,
                target,
                current,
                step.bars[symbol],
                rates[symbol],
                self.paper.limit_offset_bps * 1e-4,
                self.paper.stop_offset_bps * 1e-4,
                units,
            )
            emit(order)

    def _ask_weights(
        self, name: str, source: DecisionSource, book: BookState, symbols: list[str], stale: bool
    ) -> dict[str, _Ask]:
        """A portfolio model's weights for every symbol (one request), retried with backoff while it is
        unavailable; each symbol's entry is a decision whose target is its weight."""
        if stale:
            return {symbol: _Ask(None, reason="stale data") for symbol in symbols}
        error = ""
        for attempt in range(len(self.delays) + 1):
            try:
                if name not in self._min_bars:
                    self._min_bars[name] = (source.min_bars(), None)
                min_bars = self._min_bars[name][0]
                have = min(self.history.count(symbol) for symbol in symbols)
                if have < min_bars:
                    return {s: _Ask(None, reason=f"history: {have} of {min_bars} bars") for s in symbols}
                windows = {s: self.history.window(s, min_bars + INDICATOR_LOOKBACK) for s in symbols}
                started = time.perf_counter()
                answer = source.decide_weights(windows, {s: book.weight(s) for s in symbols})
                latency_ms = (time.perf_counter() - started) * 1000
                self._min_bars[name] = (min_bars, answer.model_version)
                return {
                    s: _Ask(answer._replace(target_position=answer.weights.get(s, 0.0)), latency_ms)
                    for s in symbols
                }
            except DecisionUnavailable as failure:
                error = str(failure)
                self._min_bars.pop(name, None)  # a new version may need a longer window: ask again
                log.warning("paper: %s model, try %d: %s", name, attempt + 1, error)
                if attempt < len(self.delays) and self.stop_requested.wait(self.delays[attempt]):
                    break
        return {s: _Ask(None, reason=f"model unavailable: {error}", error=True) for s in symbols}

    def _ask(
        self, name: str, source: DecisionSource, symbol: str, book: BookState, previous: LedgerEvent
    ) -> _Ask:
        """The model's decision for ``symbol``, retried with backoff while it is unavailable.

        A recurrent model gets back the state its previous decision on this symbol left (in the ledger,
        so a restart carries on from it), unless the model version has changed since.
        """
        error = ""
        for attempt in range(len(self.delays) + 1):
            try:
                if name not in self._min_bars:
                    self._min_bars[name] = (source.min_bars(), None)
                min_bars, version = self._min_bars[name]
                have = self.history.count(symbol)
                if have < min_bars:
                    return _Ask(None, reason=f"history: {have} of {min_bars} bars")
                window = self.history.window(symbol, min_bars + INDICATOR_LOOKBACK)
                # The version is unknown until the model first answers (after a restart): carry on then.
                carry = version is None or previous.get("model_version") == version
                state = previous.get("state") if carry else None
                started = time.perf_counter()
                decision = source.decide(window, book.weight(symbol), book.unrealised(symbol), state, symbol)
                latency_ms = (time.perf_counter() - started) * 1000
                if version is not None and decision.model_version != version:
                    del self._min_bars[name]  # a new model version may need another window
                else:
                    self._min_bars[name] = (min_bars, decision.model_version)
                return _Ask(decision, latency_ms)
            except DecisionUnavailable as failure:
                error = str(failure)
                self._min_bars.pop(name, None)  # a new version may need a longer window: ask again
                log.warning("paper: %s model, try %d: %s", name, attempt + 1, error)
                if attempt < len(self.delays) and self.stop_requested.wait(self.delays[attempt]):
                    break
        return _Ask(None, reason=f"model unavailable: {error}", error=True)

    # -- checks -----------------------------------------------------------------------------------
    @staticmethod
    def _guard(
        work: PaperState, emit: Callable[[LedgerEvent], None], check: str, status: str, message: str
    ) -> None:
        """Record a service check's change of state (nothing when it stays the same)."""
        if work.guard(check) != status:
            emit({"type": "guard", "check": check, "status": status, "message": message})

    def _drift(self, work: PaperState, emit: Callable[[LedgerEvent], None], seq: int) -> list[Drift] | None:
        if self.drift is None or seq % self.cfg.monitor.drift_every:
            return None
        measured = self.drift.measure(self.history, self.symbols)
        if measured is None:
            return None
        worst = max(measured, key=lambda row: row.psi)
        if worst.psi > self.drift.alert:
            message = f"PSI {worst.psi:.3f} on {worst.feature} above {self.drift.alert} (KS {worst.ks:.3f})"
            self._guard(work, emit, "drift", "warning", message)
        else:
            self._guard(work, emit, "drift", "ok", "")
        return measured

    # -- the champion's live record and the challenger's shadow ----------------------------------
    def _mark_live(self, version: int | None, equity: float) -> None:
        """Keep the champion's latest marks of its current version (a new version starts afresh)."""
        if version is None or self.decay is None:
            return
        held, marks = self._live
        if version != held:
            marks = []
        marks.append(equity)
        self._live = (version, marks[-(self.cfg.monitor.decay_window + 1) :])

    def _decay(self, work: PaperState, emit: Callable[[LedgerEvent], None], seq: int) -> Decay | None:
        version, marks = self._live
        if self.decay is None or version is None or seq % self.cfg.monitor.decay_every:
            return None
        if work.guard("decay") != "ok" and version != self._decay_version:  # a new champion: a new record
            self._guard(work, emit, "decay", "ok", f"champion v{version}: a new live record")
        self._decay_version = version
        model = next(
            (
                d["model_name"]
                for key, d in work.decisions.items()
                if key.startswith(f"{CHAMPION}/") and d.get("model_name")
            ),
            None,
        )
        if model is None:
            return None
        decay = self.decay.measure(model, version, marks)
        if decay is None:
            return None
        self._guard(work, emit, "decay", "warning" if decay.alert else "ok", decay.alert)
        self.decay.publish(model, decay, work.timestamp)
        return decay

    def _shadow_wait(self, version: int, seq: int) -> int | None:
        """The shadow bars ``version`` waits for: asked of the registry once, or again every
        ``SHADOW_RECHECK`` segments while it is not (yet) in shadow (its tags may follow its alias)."""
        known = self._shadow_bars.get(version)
        if known is not None and (known[0] is not None or seq - known[1] < SHADOW_RECHECK):
            return known[0]
        try:
            self._shadow_bars[version] = (self.shadow.bars_for(version), seq)
        except Exception as error:  # the registry is down: ask again next bar
            log.warning("paper: cannot tell whether challenger v%d is in shadow: %s", version, error)
            return None
        return self._shadow_bars[version][0]

    def _conclude_shadow(self, work: PaperState, emit: Callable[[LedgerEvent], None], seq: int) -> None:
        """The gate's decision on a challenger that has traded its shadow bars (or was halted by its kill
        switch before), once per version; a registry failure leaves it for the next bar."""
        book = work.books.get(CHALLENGER)
        if self.shadow is None or book is None or book.model_version is None:
            return
        version = book.model_version
        if str(version) in work.shadows:
            return
        needed = self._shadow_wait(version, seq)
        if needed is None or (book.version_bars < needed and not book.halted):
            return
        champion, start = work.books[CHAMPION], book.version_start
        if CHALLENGER not in start or CHAMPION not in start:  # a snapshot from before shadow records
            return
        record = ShadowRecord(
            version,
            book.version_bars,
            book.equity / start[CHALLENGER] - 1.0,
            champion.equity / start[CHAMPION] - 1.0,
            champion.model_version,
            book.halted,
        )
        try:
            promoted, reason = self.shadow.decide(record)
        except Exception as error:  # decided again on the next bar, with one more bar of record
            log.error("paper: the gate could not decide on challenger v%d: %s", version, error)
            return
        log.info("paper: challenger v%d after %d shadow bars: %s", version, record.bars, reason)
        emit(
            {
                "type": "shadow",
                "version": version,
                "bars": record.bars,
                "challenger_return": finite(record.challenger_return),
                "champion_return": finite(record.champion_return),
                "promote": promoted,
                "reason": reason,
            }
        )
