"""The paper trader put together from settings: feed, decision sources, ledger, sink, drift watch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsc.config import Settings
from rsc.core.schema import TIMESTAMP
from rsc.monitor import MetricsSink, sink_from_settings
from rsc.paper.decisions import DecisionSource, HttpDecisions, PolicyDecisions
from rsc.paper.drift import load_drift_watch
from rsc.paper.feeds import Feed, LiveFeed, ReplayFeed
from rsc.paper.ledger import Ledger
from rsc.paper.service import CHALLENGER, CHAMPION, PaperOutcome, PaperTrader
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout


def ledger_uri(cfg: Settings) -> str:
    return RunLayout(cfg.run_root).paper(cfg.paper.session)


def symbols_of(cfg: Settings) -> tuple[str, ...]:
    return tuple(cfg.paper.symbols or cfg.data.symbols)


def endpoint_of(cfg: Settings) -> str:
    """``paper.endpoint``, else the Serve endpoint of ``serve.*`` (as the deploy step publishes it)."""
    serve = cfg.serve
    return cfg.paper.endpoint or f"http://{serve.host}:{serve.port}{serve.route_prefix.rstrip('/')}"


def make_feed(cfg: Settings, storage: Storage) -> Feed:
    symbols = symbols_of(cfg)
    if cfg.paper.feed == "live":
        return LiveFeed(cfg.data.yfinance, symbols, cfg.paper.lookback_days, cfg.paper.poll_s)
    bars = storage.read_dataset(RunLayout(cfg.run_root).bars, symbols=list(symbols))
    return ReplayFeed(bars, cfg.paper.bars, cfg.paper.speed)


def champion_source(cfg: Settings, endpoint: str | None = None) -> DecisionSource:
    """The Serve endpoint (``paper.decisions: http``) or the registry's @champion in process."""
    if cfg.paper.decisions == "http":
        return HttpDecisions(endpoint or endpoint_of(cfg))
    return PolicyDecisions.from_registry(cfg.tracking_uri, cfg.model_name, CHAMPION)


def build_trader(
    cfg: Settings,
    sink: MetricsSink | None = None,
    endpoint: str | None = None,
    champion: DecisionSource | None = None,
    challenger: DecisionSource | None = None,
) -> PaperTrader:
    """Everything from settings; ``champion`` / ``challenger`` replace the configured sources.

    In shadow mode (``paper.shadow``) the challenger is the registry's @challenger, in process: the
    endpoint serves only the champion.
    """
    storage = Storage.from_settings(cfg.storage)
    if challenger is None and cfg.paper.shadow:
        challenger = PolicyDecisions.from_registry(cfg.tracking_uri, cfg.model_name, CHALLENGER)
    return PaperTrader(
        cfg,
        make_feed(cfg, storage),
        Ledger(storage, ledger_uri(cfg)),
        champion or champion_source(cfg, endpoint),
        challenger,
        sink if sink is not None else sink_from_settings(cfg.monitor, "rsc-paper"),
        load_drift_watch(cfg, storage, symbols_of(cfg)),
        bar_times=_bar_times(cfg, storage),
    )


def _bar_times(cfg: Settings, storage: Storage) -> np.ndarray | None:
    """The run's bar timestamps (their spacing is the policy's bar frequency), None when not stored."""
    bars = RunLayout(cfg.run_root).bars
    if not storage.exists(join(bars, "manifest.json")):
        return None
    return np.unique(storage.read_dataset(bars)[TIMESTAMP].to_numpy())


@dataclass(frozen=True)
class ReplaySummary:
    """What ``rsc run`` prints about its paper replay."""

    ledger_uri: str
    decisions: int
    trades: int
    final_equity: float
    outcome: PaperOutcome


def replay_run(cfg: Settings, endpoint: str, sink: MetricsSink) -> ReplaySummary:
    """The demo's bounded replay through the paper trader: the last ``paper.bars`` bars of the run's
    data against the endpoint, on a fresh ledger (a rerun of ``rsc run`` replaces the session's)."""
    cfg = cfg.model_copy(
        update={"paper": cfg.paper.model_copy(update={"feed": "replay", "decisions": "http"})}
    )
    storage = Storage.from_settings(cfg.storage)
    Ledger(storage, ledger_uri(cfg)).clear()
    trader = build_trader(cfg, sink, endpoint)
    outcome = trader.run()
    events = list(trader.ledger.events())
    decisions = sum(e["type"] == "decision" and e["book"] == CHAMPION for e in events)
    trades = sum(e["type"] == "fill" and e["book"] == CHAMPION for e in events)
    return ReplaySummary(outcome.ledger_uri, decisions, trades, outcome.state.books[CHAMPION].equity, outcome)
