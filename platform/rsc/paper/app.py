"""The paper trader put together from settings: feed, decision sources, ledger, sink, drift and decay
watches, and the registry's side of a challenger's shadow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rsc.config import Settings
from rsc.core.schema import TIMESTAMP
from rsc.monitor import MetricsSink, sink_from_settings
from rsc.paper.decisions import DecisionSource, HttpDecisions, RegistryDecisions
from rsc.paper.drift import load_drift_watch
from rsc.paper.feeds import Feed, LiveFeed, ReplayFeed
from rsc.paper.ledger import Ledger
from rsc.paper.service import CHALLENGER, CHAMPION, PaperOutcome, PaperTrader
from rsc.registry.gate import ShadowRecord
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout

if TYPE_CHECKING:
    from rsc.paper.decay import Backtest, DecayWatch


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
    """The Serve endpoint (``paper.decisions: http``) or the registry's @champion in process, followed
    as the alias moves (every ``serve.alias_poll_s``)."""
    if cfg.paper.decisions == "http":
        return HttpDecisions(endpoint or endpoint_of(cfg))
    return RegistryDecisions(cfg.tracking_uri, cfg.model_name, CHAMPION, cfg.serve.alias_poll_s)


def registry_backtest(model: str, version: int) -> Backtest | None:
    from rsc.paper.decay import Backtest
    from rsc.registry.promotion import test_figures

    figures = test_figures(model, version)
    return None if figures is None else Backtest(version, *figures)


def decay_watch(cfg: Settings) -> DecayWatch | None:
    """The champion's live record against the test figures stored with its version (``monitor.decay``).
    (Imported here: MLflow and scipy cost seconds of start-up a trader without the watch need not pay.)"""
    if not cfg.monitor.decay:
        return None
    from rsc.paper.decay import DecayWatch
    from rsc.registry.promotion import publish_live_record
    from rsc.registry.tracking import use_registry

    use_registry(cfg.tracking_uri)
    return DecayWatch(cfg.monitor, registry_backtest, publish_live_record)


@dataclass(frozen=True)
class RegistryShadow:
    """A challenger's shadow as the registry keeps it: the bars it waits for, the gate's last word."""

    model_name: str
    settings: Settings

    def bars_for(self, version: int) -> int | None:
        from rsc.registry.promotion import shadow_pending
        from rsc.registry.tracking import use_registry

        use_registry(self.settings.tracking_uri)
        return shadow_pending(self.model_name, version)

    def decide(self, record: ShadowRecord) -> tuple[bool, str]:
        from rsc.registry.promotion import conclude_shadow

        return conclude_shadow(self.model_name, record, self.settings.registry)


def build_trader(
    cfg: Settings,
    sink: MetricsSink | None = None,
    endpoint: str | None = None,
    champion: DecisionSource | None = None,
    challenger: DecisionSource | None = None,
    on_alert: Callable[[str, str], None] | None = None,
) -> PaperTrader:
    """Everything from settings; ``champion`` / ``challenger`` replace the configured sources.

    In shadow mode (``paper.shadow``) the challenger is the registry's @challenger, in process and
    followed as the alias moves: the endpoint serves only the champion; a challenger that waits for its
    shadow record (``registry.shadow_bars``) gets the gate's decision here. ``on_alert(check,
    message)``: what a decay or drift alert does (``rsc paper start`` starts a challenger run with
    ``paper.challenger_runs``).
    """
    storage = Storage.from_settings(cfg.storage)
    shadow = None
    if cfg.paper.shadow:
        shadow = RegistryShadow(cfg.model_name, cfg)
        if challenger is None:
            challenger = RegistryDecisions(
                cfg.tracking_uri, cfg.model_name, CHALLENGER, cfg.serve.alias_poll_s
            )
    return PaperTrader(
        cfg,
        make_feed(cfg, storage),
        Ledger(storage, ledger_uri(cfg)),
        champion or champion_source(cfg, endpoint),
        challenger,
        sink if sink is not None else sink_from_settings(cfg.monitor, "rsc-paper"),
        load_drift_watch(cfg, storage, symbols_of(cfg)),
        bar_times=_bar_times(cfg, storage),
        decay=decay_watch(cfg),
        shadow=shadow,
        on_alert=on_alert,
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
