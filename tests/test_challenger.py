"""Closing the loop: the decay watch on the paper book, the challenger run an alert starts, and a
challenger's shadow record deciding its promotion.

Real parts: the paper trader on replayed bars, MLflow on SQLite in the storage root (the champion's
test figures, tags, aliases), DogStatsD packets read by a UDP listener, the real ``kfp.Client``
against the stand-in Kubeflow Pipelines API (tests/kfp_standin.py), and the monitor definition from
k8s/datadog/monitors.json evaluated on the packets received.
"""

from __future__ import annotations

import json
import operator
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rsc.core import metrics
from rsc.core.features import IndicatorRef
from rsc.evaluate.report import live_record_section
from rsc.monitor import MemorySink, names, sink_from_settings
from rsc.paper.app import build_trader
from rsc.paper.decay import Backtest, measure_decay
from rsc.paper.service import CHALLENGER, CHAMPION
from rsc.registry.gate import GateDecision, GateEvidence
from rsc.registry.policy import Policy
from rsc.stages.evaluate import champion_live
from tests.helpers import synthetic_bars
from tests.kfp_standin import StandInKfp
from tests.paper_tools import StandinPolicy, paper_settings, register_version, store_bars
from tests.test_monitor import Listener

MONITORS = Path(__file__).resolve().parents[1] / "k8s" / "datadog" / "monitors.json"
REPLAY_BARS = 80


class Always(torch.nn.Module):
    """A network that always picks the same action (0: flat, 1: long)."""

    def __init__(self, action: int):
        super().__init__()
        self.action = action

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.full([obs.shape[0]], self.action, dtype=torch.long)


def always_policy(action: int) -> Policy:
    spec = {
        "indicators": [IndicatorRef.of("log_return", 1).to_dict()],
        "window": 2,
        "positions": [0.0, 1.0],
        "scaler": {"mean": [0.0], "std": [1.0]},
    }
    return Policy(torch.jit.script(Always(action)), spec)


def test_decay_figures_hold_a_live_record_against_its_backtest():
    rng = np.random.default_rng(0)
    backtest = Backtest(1, sharpe=0.5 * np.sqrt(252), max_drawdown=0.05, periods_per_year=252)

    def equity(mean: float) -> np.ndarray:
        return 100 * np.cumprod(np.r_[1.0, 1 + rng.normal(mean, 0.004, 60)])

    like = measure_decay(equity(0.002), backtest, 0.05, 1.5)
    worse = measure_decay(equity(-0.002), backtest, 0.05, 1.5)
    assert like.psr > 0.05 and not like.alert
    assert worse.psr < 0.001 and "PSR" in worse.alert and "drawdown" in worse.alert
    assert worse.sharpe < 0 < like.sharpe and worse.bars == like.bars == 60
    flat = measure_decay(np.full(30, 100.0), backtest, 0.05, 1.5)  # in cash all along
    assert flat.sharpe == 0.0 and flat.drawdown == 0.0 and flat.psr < 0.05  # the promise is not kept


def monitor_fires(query_metric: str, received: list[dict]) -> bool:
    """Evaluate the monitor on ``query_metric`` from monitors.json on the gauges received: its space
    aggregation over each group of its ``by`` tags, compared with its threshold."""
    (monitor,) = [m for m in json.loads(MONITORS.read_text()) if query_metric in m["query"]]
    found = re.fullmatch(
        r"(\w+)\(last_\w+\):(\w+):([\w.]+)\{env:(\w+)\} by \{([\w,]+)\} ([<>]=?) (-?[\d.]+)", monitor["query"]
    )
    _, space, metric, env, by, comparator, threshold = found.groups()
    assert float(threshold) == monitor["options"]["thresholds"]["critical"]
    groups: dict[tuple, list[float]] = {}
    for packet in received:
        if packet["kind"] == "metric" and packet["name"] == metric and packet["tags"].get("env") == env:
            key = tuple(packet["tags"][tag] for tag in by.split(","))  # every grouping tag is sent
            groups.setdefault(key, []).append(packet["value"])
    assert groups, f"no {metric} received"
    aggregate = {"min": min, "max": max, "avg": lambda v: sum(v) / len(v)}[space]
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[comparator]
    return any(compare(aggregate(values), float(threshold)) for values in groups.values())


def replay_with_decay(tmp_path, drift: float, backtest: dict, kfp: StandInKfp) -> tuple:
    """The champion (a stand-in that is always long, registered with ``backtest`` as its test figures)
    trades the last bars of a trend with ``drift``; alerts start challenger runs on ``kfp``."""
    from rsc.cli.challenger import ChallengerRuns
    from rsc.registry.tracking import CHAMPION as CHAMPION_ALIAS
    from rsc.registry.tracking import model_version, set_alias

    listener = Listener()
    overrides = [
        f"paper.bars={REPLAY_BARS}",
        "monitor.decay=true",
        "monitor.decay_min_bars=40",
        "monitor.decay_every=5",
        "monitor.enabled=true",
        "monitor.environment=cluster",
        f"monitor.statsd_port={listener.port}",
        "paper.challenger_runs=kfp",
        f"paper.kfp_host={kfp.url}",
    ]
    cfg = paper_settings(tmp_path, *overrides)
    frame = store_bars(cfg, synthetic_bars(120, drift=drift, volatility=0.004, seed=11))
    version = register_version(cfg, always_policy(1), frame, {"test": backtest})
    set_alias(cfg.model_name, CHAMPION_ALIAS, version)
    sink = MemorySink()
    statsd = sink_from_settings(cfg.monitor, "rsc-paper")
    runs = ChallengerRuns(cfg, [f"storage.root={cfg.storage.root}"], "cluster", sink)
    with StandinPolicy(
        model_version=version, rule=lambda bars, position: 1, model_name=cfg.model_name
    ) as policy:
        trader = build_trader(cfg, statsd, endpoint=policy.url, on_alert=runs)
        outcome = trader.run()
    received = listener.packets()
    listener.close()
    return (
        cfg,
        outcome,
        list(trader.ledger.events()),
        received,
        runs,
        sink,
        model_version(cfg.model_name, version),
    )


def backtest_of(frame_drift: float) -> dict:
    """The test figures an always-long policy earned on bars like the replay's (same process, own seed)."""
    closes = synthetic_bars(400, drift=frame_drift, volatility=0.004, seed=5)["close"].to_numpy()
    return {
        "policy": {"sharpe": metrics.sharpe(closes), "max_drawdown": metrics.max_drawdown(closes)},
        "conventions": {"periods_per_year": 252.0},
    }


@pytest.mark.parametrize("replay_drift", [-0.002, 0.002], ids=["far-worse", "like-the-backtest"])
def test_the_decay_watch_alerts_on_a_replay_far_worse_than_the_backtest_and_starts_a_challenger_run(
    tmp_path, replay_drift
):
    backtest = backtest_of(0.002)
    with StandInKfp() as kfp:
        cfg, outcome, events, received, runs, sink, champion = replay_with_decay(
            tmp_path, replay_drift, backtest, kfp
        )
    assert outcome.bars == REPLAY_BARS
    psr = [p["value"] for p in received if p["kind"] == "metric" and p["name"] == names.PAPER_DECAY_PSR]
    assert len(psr) >= 5  # measured every 5 bars once 40 live returns exist
    guards = [e for e in events if e["type"] == "guard" and e["check"] == "decay"]
    live = json.loads(champion.tags["rsc.live_record"])  # the latest figures, beside the backtest's
    assert live["backtest_sharpe"] == pytest.approx(backtest["policy"]["sharpe"])
    assert live["bars"] == 60 and live["psr"] == pytest.approx(psr[-1])
    reported = champion_live(cfg)  # what the next run's report shows beside the backtest
    assert reported == {**live, "version": champion.version}
    section = live_record_section(reported)
    assert f"Champion v{champion.version}, latest 60 paper bars" in section
    if replay_drift < 0:
        assert min(psr) < 0.05 and guards[0]["status"] == "warning" and "PSR" in guards[0]["message"]
        assert monitor_fires(names.PAPER_DECAY_PSR, received)
        (run,) = kfp.runs  # one challenger run, however long the alert lasts
        assert run["display_name"].startswith("paper-challenger-")
        settings = json.loads(run["runtime_config"]["parameters"]["settings_json"])
        assert settings["storage"]["root"] == f"file://{tmp_path}"  # the trader's own settings
        assert settings["cluster"]["launcher"] == "kuberay"  # on the cluster's overlay
        assert runs.started == [f"{kfp.url}/#/runs/details/{run['run_id']}"]
        (event,) = [e for e in sink.events if "challenger run started" in e.title]
        assert "decay: PSR" in event.text
        tagged = json.loads(champion.tags["rsc.event.challenger_run"])
        assert tagged["run"] == runs.started[0] and tagged["reason"].startswith("decay: PSR")
        check = [p for p in received if p["kind"] == "check" and p["name"] == names.CHECKS["decay"]]
        assert check[-1]["status"] == 1  # warning
    else:
        assert min(psr) > 0.05 and not guards
        assert not monitor_fires(names.PAPER_DECAY_PSR, received)
        assert kfp.runs == [] and runs.started == []


def shadow_run(tmp_path, champion_action: int, challenger_action: int) -> tuple:
    """The champion (always flat or always long) trades from the registry; three bars in, a challenger
    (the other one) is registered and put in shadow for 10 bars while the trader runs: the trader
    follows ``@challenger``, and the gate decides on the shadow record."""
    from rsc.registry.promotion import start_shadow
    from rsc.registry.tracking import CHAMPION as CHAMPION_ALIAS
    from rsc.registry.tracking import model_version, resolve_alias, set_alias

    cfg = paper_settings(
        tmp_path,
        "paper.bars=30",
        "paper.decisions=registry",
        "paper.shadow=true",
        "registry.shadow_bars=10",
        "serve.alias_poll_s=0.01",  # follow the aliases at once
    )
    frame = store_bars(cfg, synthetic_bars(120, drift=0.003, volatility=0.004, seed=2))  # a rising market
    champion = register_version(cfg, always_policy(champion_action), frame)  # also @challenger for now
    set_alias(cfg.model_name, CHAMPION_ALIAS, champion)
    sink = MemorySink()
    trader = build_trader(cfg, sink)
    source, registered = trader.sources[CHAMPION], []
    original = source.decide

    def decide_and_register(*args):
        if len(trader.ledger.segments()) == 3 and not registered:  # a register stage, mid-session
            registered.append(register_version(cfg, always_policy(challenger_action), frame))
            passed = GateDecision(
                True, "promote: [pass] sharpe 1.2 beats champion 0.9", (), GateEvidence("sharpe", 1.2, 0.5)
            )
            start_shadow(cfg.model_name, registered[0], 10, passed)
        return original(*args)

    source.decide = decide_and_register
    outcome = trader.run()
    events = list(trader.ledger.events())
    return (
        outcome,
        events,
        sink,
        model_version(cfg.model_name, registered[0]),
        resolve_alias(cfg.model_name, CHAMPION_ALIAS),
    )


def test_a_challenger_better_in_shadow_is_promoted_and_a_worse_one_refused(tmp_path):
    outcome, events, sink, version, champion = shadow_run(tmp_path / "better", 0, 1)
    (decided,) = [e for e in events if e["type"] == "shadow"]
    assert (
        decided["promote"]
        and decided["bars"] == 10
        and decided["challenger_return"] > decided["champion_return"]
    )
    assert champion == version.version  # the alias moved
    assert version.tags["rsc.shadow.status"] == "promoted" and version.tags["rsc.gate.promote"] == "True"
    reason = version.tags["rsc.gate.reason"]
    assert (
        reason.startswith("promote: [pass] in shadow over 10 bars")
        and "test window: promote: [pass]" in reason
    )
    assert {"rsc.event.shadow_started", "rsc.event.shadow_decided", "rsc.event.promoted"} <= set(version.tags)
    assert json.loads(version.tags["rsc.event.shadow_decided"])["shadow"]["bars"] == 10
    assert any("promoted after 10 shadow bars" in e.title for e in sink.events)
    assert outcome.state.shadows[str(version.version)]["promote"] is True

    outcome, events, sink, version, champion = shadow_run(tmp_path / "worse", 1, 0)
    (decided,) = [e for e in events if e["type"] == "shadow"]
    assert not decided["promote"] and decided["challenger_return"] < decided["champion_return"]
    assert champion != version.version  # the champion stays
    assert version.tags["rsc.shadow.status"] == "refused" and version.tags["rsc.gate.promote"] == "False"
    assert version.tags["rsc.gate.reason"].startswith("keep champion: [fail] in shadow over 10 bars")
    assert "rsc.event.promoted" not in version.tags
    assert any("refused after 10 shadow bars" in e.title for e in sink.events)
    books = outcome.state.books
    assert books[CHALLENGER].version_bars >= 10 and books[CHAMPION].model_version == champion


def test_challenger_runs_keep_their_cooldown_their_own_run_name_and_the_lineage(tmp_path):
    from rsc.cli.challenger import ChallengerRuns

    now = [0.0]
    with StandInKfp() as kfp:
        cfg = paper_settings(tmp_path, "paper.challenger_runs=kfp", f"paper.kfp_host={kfp.url}")
        runs = ChallengerRuns(
            cfg, [f"storage.root={cfg.storage.root}"], "cluster", MemorySink(), lambda: now[0]
        )
        runs("drift", "PSI 0.4 on rsi_14")
        now[0] = cfg.paper.challenger_cooldown_s - 1
        runs("decay", "PSR 0.01")  # within the cooldown: none
        now[0] = cfg.paper.challenger_cooldown_s + 1
        runs("decay", "PSR 0.01")
    assert len(kfp.runs) == len(runs.started) == 2
    settings = json.loads(kfp.runs[0]["runtime_config"]["parameters"]["settings_json"])
    assert settings["run"]["name"] == "paper-challenger"  # never the trader's own latest execution
    assert settings["registry"]["strategy"] == "paper"  # the trader's lineage, rsc-paper-syn-1d


def test_a_resumed_trader_measures_the_same_live_record_as_an_uninterrupted_one(tmp_path):
    from rsc.registry.tracking import CHAMPION as CHAMPION_ALIAS
    from rsc.registry.tracking import set_alias

    def settings(session: str):
        return paper_settings(
            tmp_path,
            "paper.bars=60",
            "monitor.decay=true",
            "monitor.decay_min_bars=20",
            f"paper.session={session}",
        )

    cfg = settings("whole")
    frame = store_bars(cfg, synthetic_bars(120, drift=-0.001, volatility=0.004, seed=11))
    version = register_version(cfg, always_policy(1), frame, {"test": backtest_of(0.002)})
    set_alias(cfg.model_name, CHAMPION_ALIAS, version)

    def psr(sink: MemorySink) -> list[float]:
        return [m.value for m in sink.metrics if m.name == names.PAPER_DECAY_PSR]

    rule = {"rule": lambda bars, position: 1, "model_version": version, "model_name": cfg.model_name}
    with StandinPolicy(**rule) as policy:
        whole = MemorySink()
        build_trader(cfg, whole, endpoint=policy.url).run()
        first, rest = MemorySink(), MemorySink()
        assert build_trader(settings("split"), first, endpoint=policy.url).run(max_bars=33).bars == 33
        resumed = build_trader(settings("split"), rest, endpoint=policy.url).run()
    assert resumed.bars == 27
    assert psr(first) + psr(rest) == psr(whole) and len(psr(rest)) >= 3
