"""Monitoring: DogStatsD packets read off a real UDP socket on 127.0.0.1 (metrics, service checks,
events) from the sink, the paper trader and the training hook; drift statistics by hand and in the
trader."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rsc.core.schema import PART
from rsc.data.features import add_features
from rsc.monitor import DogStatsdSink, Event, MemorySink, Metric, ServiceCheck, names
from rsc.monitor.drift import MIN_SHARE, feature_drift, ks, psi
from rsc.monitor.train import TrainMetrics
from rsc.paper.app import build_trader
from rsc.paper.service import CHAMPION
from rsc.storage import Storage, join
from tests.helpers import synthetic_bars
from tests.paper_tools import StandinPolicy, paper_settings, store_bars

# Every tag key the platform may send: bounded sets only (never an order id or a timestamp).
TAG_KEYS = {"env", "service", "strategy", "book", "model_version", "symbol", "status", "kind", "check"}
TAG_KEYS |= {"feature", "metric", "algorithm"}


class Listener:
    """A UDP socket standing in for the Datadog agent; a thread reads it as the agent would (a long run
    sends more than the socket's buffer holds), :meth:`packets` parses what arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._lines: list[str] = []
        self._last_at = time.monotonic()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65_535).decode()
            except (TimeoutError, OSError):
                continue
            self._lines += [line for line in data.splitlines() if line]
            self._last_at = time.monotonic()

    def sink(self, **tags: str) -> DogStatsdSink:
        return DogStatsdSink("127.0.0.1", self.port, tags or {"env": "test", "service": "rsc-test"})

    def packets(self) -> list[dict]:
        """Everything received since the last call, once the socket has been quiet for half a second."""
        while time.monotonic() - self._last_at < 0.5:
            time.sleep(0.05)
        taken, self._lines = self._lines, []
        return [parse(line) for line in taken]

    def close(self) -> None:
        self._closed.set()
        self._reader.join()
        self.sock.close()


def _tags(fields: list[str]) -> dict[str, str]:
    found = [f[1:] for f in fields if f.startswith("#")]
    return dict(tag.split(":", 1) for tag in found[0].split(",")) if found else {}


def parse(line: str) -> dict:
    """One DogStatsD datagram line: a metric, a service check (``_sc``) or an event (``_e``)."""
    if line.startswith("_sc|"):
        fields = line.split("|")
        message = next((f[2:] for f in fields if f.startswith("m:")), "")
        return {
            "kind": "check",
            "name": fields[1],
            "status": int(fields[2]),
            "tags": _tags(fields),
            "message": message,
        }
    if line.startswith("_e{"):
        head, rest = line.split(":", 1)
        title_len, text_len = (int(n) for n in head[3:-1].split(","))
        title, text = rest[:title_len], rest[title_len + 1 : title_len + 1 + text_len]
        fields = rest[title_len + 1 + text_len :].split("|")
        options = {f[:1]: f[2:] for f in fields if len(f) > 1 and f[1] == ":"}
        return {
            "kind": "event",
            "title": title,
            "text": text,
            "alert": options.get("t"),
            "tags": _tags(fields),
        }
    fields = line.split("|")
    name, value = fields[0].rsplit(":", 1)
    return {"kind": "metric", "name": name, "value": float(value), "type": fields[1], "tags": _tags(fields)}


@pytest.fixture
def statsd() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def test_sink_sends_metrics_service_checks_and_events(statsd):
    sink = statsd.sink(env="test", service="rsc-paper")
    sink.send(Metric(names.PAPER_EQUITY, 101_234.5, "gauge", {"strategy": "s1", "book": "champion"}))
    sink.send(Metric(names.PAPER_ORDERS, 3, "count", {"strategy": "s1", "status": "filled"}))
    sink.send(Metric(names.PAPER_DECISION_LATENCY, 12.5, "histogram", {"strategy": "s1"}))
    sink.send(ServiceCheck(names.CHECKS["risk"], "critical", "kill switch: drawdown 26%", {"strategy": "s1"}))
    sink.send(
        Event("rsc paper: kill switch on s1", "Flattened and stopped", "error", {"strategy": "s1"}, "k1")
    )
    sink.close()
    equity, orders, latency, check, event = statsd.packets()
    assert equity == {
        "kind": "metric",
        "name": "rsc.paper.equity",
        "value": 101_234.5,
        "type": "g",
        "tags": {"env": "test", "service": "rsc-paper", "strategy": "s1", "book": "champion"},
    }
    assert (orders["name"], orders["value"], orders["type"], orders["tags"]["status"]) == (
        "rsc.paper.orders",
        3,
        "c",
        "filled",
    )
    assert (latency["type"], latency["value"]) == ("h", 12.5)
    assert check["name"] == "rsc.paper.risk" and check["status"] == 2
    assert check["message"] == "kill switch: drawdown 26%" and check["tags"]["env"] == "test"
    assert event["title"] == "rsc paper: kill switch on s1" and event["text"] == "Flattened and stopped"
    assert event["alert"] == "error" and event["tags"]["strategy"] == "s1"


def test_paper_trading_metrics_arrive_as_udp_packets(tmp_path, statsd):
    cfg = paper_settings(
        tmp_path,
        "paper.bars=20",
        "paper.risk.max_drawdown=0.04",
        "paper.risk.model_retries=1",
        "paper.strategy=trend",
    )
    store_bars(cfg, synthetic_bars(60, drift=-0.01, seed=4, volatility=0.002))
    with StandinPolicy(rule=lambda bars, position: 1, fail=2) as policy:
        outcome = build_trader(cfg, statsd.sink(env="test", service="rsc-paper"), endpoint=policy.url).run()
    packets = statsd.packets()
    book = outcome.state.books[CHAMPION]
    assert outcome.stopped.startswith("halted: drawdown")
    metrics = [p for p in packets if p["kind"] == "metric"]
    equity = [p for p in metrics if p["name"] == names.PAPER_EQUITY]
    assert len(equity) == outcome.bars and equity[-1]["value"] == pytest.approx(book.equity)
    assert equity[-1]["tags"] == {
        "env": "test",
        "service": "rsc-paper",
        "strategy": "trend",
        "book": "champion",
        "model_version": "3",
    }
    pnl = [p for p in metrics if p["name"] == names.PAPER_PNL]
    assert pnl[-1]["value"] == pytest.approx(book.equity - cfg.env.initial_cash)
    drawdown = [p for p in metrics if p["name"] == names.PAPER_DRAWDOWN]
    assert drawdown[-1]["value"] == pytest.approx(book.drawdown) and drawdown[-1]["value"] > 0.04
    position = [p for p in metrics if p["name"] == names.PAPER_POSITION]
    assert position[-1]["tags"]["symbol"] == "SYN" and position[-1]["value"] == 0.0  # flattened
    filled = sum(
        p["value"] for p in metrics if p["name"] == names.PAPER_ORDERS and p["tags"]["status"] == "filled"
    )
    assert filled == book.fills - 1  # all but the kill switch's own fill came from orders
    latency = [p for p in metrics if p["name"] == names.PAPER_DECISION_LATENCY]
    assert latency and all(p["type"] == "h" and p["value"] > 0 for p in latency)
    (error,) = [p for p in metrics if p["name"] == names.PAPER_ERRORS]
    assert error["tags"]["kind"] == "model" and error["value"] == 1
    checks = [p for p in packets if p["kind"] == "check"]
    assert {p["name"] for p in checks} == set(names.CHECKS.values())
    risk = [p for p in checks if p["name"] == "rsc.paper.risk"]
    assert [p["status"] for p in risk[-2:]] == [0, 2] and risk[-1]["message"].startswith(
        "kill switch: drawdown"
    )
    events = [p for p in packets if p["kind"] == "event"]
    assert [e["alert"] for e in events] == ["error", "success", "error", "error"]  # model down, back, kill
    assert "kill switch" in events[-2]["title"] and events[-1]["title"] == "rsc paper: risk critical on trend"
    for packet in packets:
        assert set(packet["tags"]) <= TAG_KEYS, packet


def test_train_hook_sends_return_throughput_and_validation(statsd):
    times = iter([10.0, 12.0, 15.0])
    hook = TrainMetrics(
        statsd.sink(env="test", service="rsc-train"), {"algorithm": "PPO"}, clock=lambda: next(times)
    )
    hook({"iteration": 1, "episode_return_mean": 0.5, "env_steps": 4000, "eval/sharpe": 1.25})
    hook(
        {
            "iteration": 2,
            "episode_return_mean": None,
            "env_steps": 8000,
            "eval/sharpe": 1.5,
            "eval/total_return": 0.1,
        }
    )
    hook({"iteration": 3, "episode_return_mean": 0.75, "env_steps": 14000, "eval/sharpe": float("nan")})
    got = [(p["name"], p["value"], p["tags"].get("metric")) for p in statsd.packets()]
    assert got == [
        (names.TRAIN_EPISODE_RETURN, 0.5, None),
        (names.TRAIN_VALIDATION, 1.25, "sharpe"),
        (names.TRAIN_THROUGHPUT, 2000.0, None),  # 4,000 steps in 2 s
        (names.TRAIN_VALIDATION, 1.5, "sharpe"),
        (names.TRAIN_VALIDATION, 0.1, "total_return"),
        (names.TRAIN_EPISODE_RETURN, 0.75, None),
        (names.TRAIN_THROUGHPUT, 2000.0, None),  # 6,000 steps in 3 s; the NaN validation is not sent
    ]


@pytest.mark.slow
def test_train_hook_on_a_real_rllib_run(smoke_split, ray_session, tmp_path, statsd):
    from rsc.core.observation import observation_size
    from rsc.rl.train import train_algorithm
    from tests.test_training import algorithm_config

    cfg, split = smoke_split
    _, env, config = algorithm_config(cfg, split, "ppo")
    hook = TrainMetrics(statsd.sink(env="test", service="rsc-train"), {"algorithm": "PPO"})
    train_algorithm(
        config, 2, f"file://{tmp_path}/model", Storage(), observation_size(env.window, 5), on_iteration=hook
    )
    packets = statsd.packets()
    (throughput,) = [p for p in packets if p["name"] == names.TRAIN_THROUGHPUT]
    assert throughput["value"] > 0 and throughput["tags"]["algorithm"] == "PPO"
    sharpe = [p for p in packets if p["name"] == names.TRAIN_VALIDATION and p["tags"]["metric"] == "sharpe"]
    assert len(sharpe) == 2 and all(np.isfinite(p["value"]) for p in sharpe)


# -- drift ------------------------------------------------------------------------------------------


def test_psi_hand_computed():
    reference = np.arange(100.0)  # quartile bins [.., 24.75), [24.75, 49.5), [49.5, 74.25), [74.25, ..)
    live = np.arange(25.0)  # all in the first bin
    share = np.array([1.0, MIN_SHARE, MIN_SHARE, MIN_SHARE])
    expected = np.sum((share - 0.25) * np.log(share / 0.25))
    assert psi(reference, live, bins=4) == pytest.approx(expected)
    assert psi(reference, reference[::-1], bins=4) == 0.0


def test_drift_statistics_see_a_shift_and_not_its_absence():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    same, shifted = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    assert psi(reference, same) < 0.02 < 0.25 < psi(reference, rng.normal(1.0, 1, 2000))
    assert psi(reference, same) < psi(reference, shifted)
    statistic, pvalue = ks(reference, shifted)
    expected = stats.ks_2samp(reference, shifted)
    assert (statistic, pvalue) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert pvalue < 1e-6 and ks(reference, same)[1] > 0.01
    assert ks(np.r_[reference, np.nan], same) == ks(reference, same)  # non-finite values are ignored
    rows = feature_drift(np.c_[reference, reference], np.c_[same, shifted], ["a", "b"])
    assert [r.feature for r in rows] == ["a", "b"] and rows[1].psi > rows[0].psi
    with pytest.raises(ValueError, match="2 names, reference has 2 columns, live has 1"):
        feature_drift(np.c_[reference, reference], same[:, None], ["a", "b"])


def stitched(calm: int, wild: int) -> pd.DataFrame:
    """Calm bars, then wild bars (ten times the volatility) continuing the same price path."""
    first = synthetic_bars(calm, seed=6, volatility=0.004)
    if not wild:
        return first
    second = synthetic_bars(wild, seed=7, volatility=0.04)
    scale = first.close.iloc[-1] / second.open.iloc[0]
    second[["open", "high", "low", "close"]] *= scale
    second["timestamp"] = pd.bdate_range(first.timestamp.iloc[-1] + pd.offsets.BDay(), periods=wild)
    return pd.concat([first, second], ignore_index=True)


def drift_run(tmp_path, wild: int):
    """40 replayed bars after 400 - wild calm ones and ``wild`` wild ones; the split's training rows
    are the features of the first 300 bars."""
    cfg = paper_settings(
        tmp_path,
        "paper.bars=40",
        "monitor.drift=true",
        "monitor.drift_every=10",
        "monitor.drift_window=100",
        # Indicators of one price path drift from any one window of themselves: PSI over 100 bars
        # of a calm path reaches about 1.3 here, so the alert sits above that.
        "monitor.drift_psi_alert=3",
    )
    bars = stitched(400 - wild, wild)
    store_bars(cfg, bars)
    features = add_features(bars.head(300), cfg.features).assign(**{PART: "train"})
    Storage().write_dataset(join(cfg.run_root, "split"), features)
    sink = MemorySink()
    with StandinPolicy() as policy:
        outcome = build_trader(cfg, sink, endpoint=policy.url).run()
    return outcome, sink


def test_the_trader_measures_drift_against_the_training_window(tmp_path):
    calm, calm_sink = drift_run(tmp_path / "calm", 0)
    wild, wild_sink = drift_run(tmp_path / "wild", 60)
    for outcome, sink, status in ((calm, calm_sink, "ok"), (wild, wild_sink, "warning")):
        psi_points = [m for m in sink.metrics if m.name == names.PAPER_DRIFT_PSI]
        assert len(psi_points) == 4 * 5  # at bars 10, 20, 30 and 40, for each of five features
        assert {m.tags["feature"] for m in psi_points} == {
            "log_return_1",
            "log_return_5",
            "sma_ratio_20",
            "rsi_14",
            "volatility_20",
        }
        assert len([m for m in sink.metrics if m.name == names.PAPER_DRIFT_KS]) == 4 * 5
        assert outcome.state.guard("drift") == status
        assert [c.status for c in sink.checks if c.name == names.CHECKS["drift"]][-1] == status

    def last(sink, feature):
        return [
            m.value for m in sink.metrics if m.name == names.PAPER_DRIFT_PSI and m.tags["feature"] == feature
        ][-1]

    assert last(wild_sink, "volatility_20") > 3 > 1.5 > last(calm_sink, "volatility_20")
    # The message is the first breach's (a check changes state once): its feature and PSI were measured.
    value, feature = re.match(r"PSI (\S+) on (\w+) above 3", wild.state.guards["drift"]["message"]).groups()
    assert float(value) > 3 and value in {
        f"{m.value:.3f}"
        for m in wild_sink.metrics
        if m.name == names.PAPER_DRIFT_PSI and m.tags["feature"] == feature
    }
