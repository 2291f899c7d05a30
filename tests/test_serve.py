"""The policy endpoint over real HTTP: a Ray Serve app on the session's Ray head, MLflow on SQLite.

One app serves the module; the switch test starts a second, two-replica app beside it and moves the
``champion`` alias (a new version through the register stage's gate, then a rollback) while clients keep
sending requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from rsc.cluster.local import free_port
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TEST, TIMESTAMP
from rsc.monitor import names
from rsc.registry.policy import Policy
from rsc.registry.promotion import rollback
from rsc.registry.pyfunc import decide_on_bars
from rsc.registry.tracking import use_registry
from rsc.serve.deploy import deploy, policy_app, wait_until_healthy
from rsc.storage import Storage, join
from tests.conftest import CONFIGS, smoke_settings
from tests.stored_run import register_policy_run, store_run

MAX_BATCH_REQUESTS = 8
DRIFT_WINDOW = 200
REQUEST_METRICS = {names.SERVE_REQUESTS, names.SERVE_LATENCY, names.SERVE_ERRORS}


class StatsdListener:
    """A UDP socket standing in for the Datadog agent: collects DogStatsD metric lines and events."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []  # metrics
        self.events: list[str] = []  # `_e{...}` lines
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                for line in self.sock.recv(65535).decode().splitlines():
                    (self.events if line.startswith("_e{") else self.lines).append(line)
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, ray_session):
    """Version 1 registered and promoted, served on a free port; torn down after the module."""
    from ray import serve

    statsd = StatsdListener()
    root = tmp_path_factory.mktemp("serve")
    cfg = smoke_settings(
        root,
        "split.validation_end=2017-06-30",
        "data.symbols=[SYN]",
        "registry.min_deflated_sharpe=null",
        f"serve.port={free_port()}",
        "serve.alias_poll_s=0.5",
        "serve.batch_wait_timeout_s=0.02",  # concurrent requests reliably meet in one batch
        f"serve.max_batch_requests={MAX_BATCH_REQUESTS}",
        "serve.drift_every_s=0.3",
        f"serve.drift_window={DRIFT_WINDOW}",
        "serve.max_body_bytes=200000",
        "monitor.enabled=true",
        f"monitor.statsd_port={statsd.port}",
    )
    uris = store_run(cfg)
    register_policy_run(cfg, uris, 1, sharpe=1.0)
    url = deploy(cfg.serve, ray_session.address, cfg.tracking_uri, cfg.model_name, cfg.monitor)
    yield cfg, uris, url, statsd
    serve.shutdown()
    statsd.close()


def local_policy(cfg, seed: int) -> Policy:
    return Policy.load(Storage().local_path(join(cfg.run_root, f"model-{seed}")))


def test_bars_window_gets_the_registered_policys_action(served):
    cfg, uris, url, _ = served
    frame = Storage().read_dataset(uris["split"])
    bars = frame[(frame["part"] == TEST) & (frame[SYMBOL] == "SYN")].tail(80)
    payload = [
        {TIMESTAMP: str(row[TIMESTAMP]), **{c: row[c] for c in OHLCV_COLUMNS}} for _, row in bars.iterrows()
    ]
    response = requests.post(
        f"{url}/v1/act", json={"bars": payload, "position": 1.0, "unrealised_return": 0.01}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = decide_on_bars(local_policy(cfg, 1), bars[list(OHLCV_COLUMNS)], 1.0, 0.01)
    assert body == {
        "action": int(expected["action"][0]),
        "target_position": float(expected["target_position"][0]),
        "model_name": cfg.model_name,
        "model_version": 1,
    }


def feature_windows(policy: Policy, n: int, seed: int = 0) -> list[list[list[float]]]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.02, (n, policy.window, len(policy.feature_names))).tolist()


def test_concurrent_feature_requests_are_batched_and_each_gets_its_own_answer(served):
    cfg, _, url, statsd = served
    policy = local_policy(cfg, 1)
    windows = feature_windows(policy, 24)
    positions = [i % 2 * 1.0 for i in range(24)]

    def call(i: int) -> dict:
        payload = {"features": windows[i], "position": positions[i], "feature_names": policy.feature_names}
        response = requests.post(f"{url}/v1/act", json=payload, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, range(24)))
    expected = [policy.decide(np.asarray(w), p) for w, p in zip(windows, positions, strict=True)]
    assert [a["action"] for a in answers] == [e.action for e in expected]
    assert len({e.action for e in expected}) > 1  # the check can tell answers apart
    deadline = time.monotonic() + 10
    sizes: list[int] = []
    while time.monotonic() < deadline and sum(sizes) < 24:
        time.sleep(0.1)
        sizes = [int(m[1]) for m in map(parse, statsd.lines) if m[0] == names.SERVE_BATCH_SIZE]
    assert sum(sizes) >= 24 and 1 < max(sizes) <= cfg.serve.max_batch_size, sizes


def test_batch_endpoint_answers_in_order(served):
    cfg, _, url, _ = served
    policy = local_policy(cfg, 1)
    windows = feature_windows(policy, 5, seed=1)
    body = {"requests": [{"features": w, "position": 0.0} for w in windows]}
    response = requests.post(f"{url}/v1/act/batch", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == 1
    assert [r["action"] for r in answer["results"]] == [
        policy.decide(np.asarray(w), 0.0).action for w in windows
    ]


def test_model_health_and_openapi(served):
    cfg, _, url, _ = served
    model = requests.get(f"{url}/v1/model", timeout=10).json()
    policy = local_policy(cfg, 1)
    assert model["model_version"] == 1 and model["alias"] == "champion"
    assert model["feature_names"] == policy.feature_names and model["min_bars"] == policy.min_bars
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["alias_checked_s_ago"] < 30 and health["last_error"] is None
    spec = requests.get(f"{url}/openapi.json", timeout=10).json()
    assert {"/v1/act", "/v1/act/batch", "/v1/model", "/healthz"} <= set(spec["paths"])
    assert "ActRequest" in spec["components"]["schemas"]


def window(url: str) -> tuple[int, int]:
    model = requests.get(f"{url}/v1/model", timeout=10).json()
    return model["window"], len(model["feature_names"])


@pytest.mark.parametrize(
    ("make_payload", "status", "message"),
    [
        (lambda w, f: {"features": [[0.0] * f] * (w - 1)}, 422, "must have shape"),
        (lambda w, f: {"features": [[0.0] * (f + 1)] * w}, 422, "must have shape"),
        (
            lambda w, f: {"features": [[0.0] * f] * w, "feature_names": ["a"] * f},
            422,
            "'feature_names' must be",
        ),
        (lambda w, f: {}, 422, "exactly one of 'bars', 'features'"),
        (lambda w, f: {"bars": [{"open": 1, "high": 1, "low": 1, "close": 1}]}, 422, "volume"),
        (
            lambda w, f: {"bars": [{"open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}] * 3},
            422,
            "at least",
        ),
        (lambda w, f: {"features": [[0.0] * f] * w, "position": 50}, 422, "position"),
        (lambda w, f: {"features": [[0.0] * f] * w, "extra": 1}, 422, "extra"),
        (lambda w, f: {"features": "nope"}, 422, "features"),
        (lambda w, f: {"features": [[0.0] * f] * 10_000}, 413, "request body over 200000 bytes"),
    ],
)
def test_bad_requests_get_a_clear_4xx(served, make_payload, status, message):
    _, _, url, _ = served
    response = requests.post(f"{url}/v1/act", json=make_payload(*window(url)), timeout=30)
    assert response.status_code == status, response.text
    assert message in response.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422_not_500(served, literal):
    _, _, url, _ = served
    w, f = window(url)
    rows = [[0.0] * f for _ in range(w)]
    body = json.dumps({"features": rows}).replace("0.0", literal, 1)
    response = requests.post(
        f"{url}/v1/act", data=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "features", 0, 0]


def test_chunked_oversized_body_is_413(served):
    _, _, url, _ = served

    def chunks():
        for _ in range(50):
            yield b" " * 10_000  # 500 kB of whitespace, no Content-Length

    response = requests.post(
        f"{url}/v1/act", data=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413


def test_batch_limits_and_item_errors(served):
    _, _, url, _ = served
    w, f = window(url)
    good = {"features": [[0.0] * f] * w}
    too_many = requests.post(
        f"{url}/v1/act/batch", json={"requests": [good] * (MAX_BATCH_REQUESTS + 1)}, timeout=30
    )
    assert too_many.status_code == 413 and f"over {MAX_BATCH_REQUESTS}" in too_many.text
    bad_item = requests.post(
        f"{url}/v1/act/batch", json={"requests": [good, {"features": [[0.0]]}]}, timeout=30
    )
    assert bad_item.status_code == 422
    assert bad_item.json()["detail"][0]["loc"] == ["body", "requests", 1, "features"]
    empty = requests.post(f"{url}/v1/act/batch", json={"requests": []}, timeout=30)
    assert empty.status_code == 422


def parse(line: str) -> tuple[str, str, str, dict[str, str]]:
    """``name:value|type|#k:v,...`` -> name, value, type, tags."""
    head, _, tags = line.partition("|#")
    name_value, kind = head.split("|")[:2]
    name, value = name_value.split(":")
    return name, value, kind, dict(tag.split(":", 1) for tag in tags.split(",") if tag)


def test_requests_are_counted_in_datadog_with_bounded_tags(served):
    _, _, url, statsd = served
    w, f = window(url)
    answer = requests.post(f"{url}/v1/act", json={"features": [[0.0] * f] * w}, timeout=30)
    assert answer.headers["x-model-version"] == str(answer.json()["model_version"]) == "1"
    requests.post(f"{url}/v1/act", json={}, timeout=30)
    base = {"endpoint": "/v1/act", "model_version": "1", "env": "local", "service": "rsc-serve"}
    wanted = [("rsc.serve.requests", "1", "c", {**base, "status_class": s}) for s in ("2xx", "4xx")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(w in map(parse, statsd.lines) for w in wanted):
        time.sleep(0.1)
    metrics = [m for m in map(parse, statsd.lines) if m[0] in REQUEST_METRICS]
    assert all(w in metrics for w in wanted), metrics[-6:]
    latencies = [m for m in metrics if m[0] == "rsc.serve.latency_ms"]
    assert latencies and {m[2] for m in latencies} == {"h"} and all(float(m[1]) > 0 for m in latencies)
    assert {key for m in metrics for key in m[3]} == {
        "endpoint",
        "env",
        "model_version",
        "service",
        "status_class",
    }
    assert {m[3]["endpoint"] for m in metrics} <= {
        "/v1/act",
        "/v1/act/batch",
        "/v1/model",
        "/healthz",
        "/openapi.json",
    }
    assert not any(m[0] == "rsc.serve.errors" for m in metrics)  # no 5xx so far


class Client(threading.Thread):
    """Sends /v1/act requests back to back until stopped; records (start time, status, version) of each."""

    def __init__(self, url: str, payload: dict):
        super().__init__(daemon=True)
        self.url, self.payload = url, payload
        self.seen: list[tuple[float, int, int | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = session.post(f"{self.url}/v1/act", json=self.payload, timeout=30)
                    version = response.json().get("model_version") if response.ok else None
                    self.seen.append((started, response.status_code, version))
                except requests.RequestException:
                    self.seen.append((started, 0, None))


def wait_for_announcement(url: str, version: int, timeout_s: float = 60.0) -> float:
    """The monotonic time at which ``/v1/model`` first showed ``version`` announced on every replica."""
    deadline, model = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        model = requests.get(f"{url}/v1/model", timeout=10).json()
        if model.get("announced_version") == version:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"version {version} was not announced within {timeout_s}s: {model}")


def _latest_psi(statsd: StatsdListener, after: int) -> dict[str, float]:
    """The PSI gauges of the latest drift measurement among the lines received after ``after``."""
    found: dict[str, float] = {}
    for name, value, _, tags in map(parse, statsd.lines[after:]):
        if name == names.SERVE_DRIFT_PSI:
            assert tags["model_version"].isdigit()  # bounded tags: the feature and the version
            found[tags["feature"]] = float(value)
    return found


def test_shifted_request_features_raise_the_endpoint_drift(served):
    """Requests drawn from the training rows keep every feature's PSI low; the same requests shifted by
    two standard deviations push it above the alert level (measured off the request path)."""
    cfg, uris, url, statsd = served
    policy = local_policy(cfg, 1)
    frame = Storage().read_dataset(uris["split"])
    train = frame[frame["part"] == "train"][policy.feature_names].dropna().to_numpy()
    std = np.asarray(policy.spec.scaler.std)
    rng = np.random.default_rng(5)

    def send(shift: float) -> dict[str, float]:
        for _ in range(DRIFT_WINDOW // MAX_BATCH_REQUESTS):
            starts = rng.integers(0, len(train) - policy.window, MAX_BATCH_REQUESTS)
            windows = [(train[i : i + policy.window] + shift * std).tolist() for i in starts]
            body = {"requests": [{"features": w} for w in windows]}
            assert requests.post(f"{url}/v1/act/batch", json=body, timeout=30).status_code == 200
        mark = len(statsd.lines)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_latest_psi(statsd, mark)) < len(policy.feature_names):
            time.sleep(0.1)
        return _latest_psi(statsd, mark)

    steady = send(0.0)
    assert len(steady) == len(policy.feature_names) and max(steady.values()) < cfg.monitor.drift_psi_alert
    shifted = send(2.0)
    assert max(shifted.values()) > cfg.monitor.drift_psi_alert, shifted
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert set(health["drift_psi"]) == set(policy.feature_names)


def test_switching_two_replicas_is_announced_and_no_later_request_gets_the_old_version(served, ray_session):
    """Two replicas follow one controller: the switch to v2 (and the rollback to v1) is announced once
    both serve it, no request fails meanwhile, and no request started after an announcement is
    answered by the older version."""
    from ray import serve

    cfg, uris, url, statsd = served
    settings = cfg.serve.model_copy(update={"num_replicas": 2, "replica_cpus": 0.1})
    app = policy_app(settings, cfg.tracking_uri, cfg.model_name, cfg.monitor)
    serve.run(app, name="rsc-switch", route_prefix="/switch", blocking=False)
    switch_url = f"{url}/switch"
    clients: list[Client] = []
    try:
        wait_until_healthy(switch_url, 120)
        wait_for_announcement(switch_url, 1)
        w, f = window(switch_url)
        clients += [Client(switch_url, {"features": [[0.001] * f] * w, "position": 0.0}) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(1.0)
        _, result = register_policy_run(cfg, uris, 2, sharpe=2.0)  # the gate promotes it: champion -> 2
        assert result.promoted and result.champion_version == 2
        announced_v2 = wait_for_announcement(switch_url, 2)
        time.sleep(1.0)
        use_registry(cfg.tracking_uri)
        rollback_at = time.monotonic()
        assert rollback(cfg.model_name) == (2, 1)
        announced_back = wait_for_announcement(switch_url, 1)
        time.sleep(1.0)
        model = requests.get(f"{switch_url}/v1/model", timeout=10).json()
    finally:
        for client in clients:
            client.stop.set()
            client.join()
        serve.delete("rsc-switch")
    seen = sorted(item for client in clients for item in client.seen)
    assert {status for _, status, _ in seen} == {200}, "a request failed during the switches"
    assert len(model["replica_versions"]) == 2 and set(model["replica_versions"].values()) == {1}
    between = [v for started, _, v in seen if announced_v2 < started < rollback_at]
    after_back = [v for started, _, v in seen if started > announced_back]
    assert set(between) == {2} and len(between) > 10  # after v2's announcement, before the rollback began
    assert set(after_back) == {1} and len(after_back) > 10
    assert {v for started, _, v in seen if started < announced_v2} >= {1}
    # the session head's own Serve logs (another test's head may have moved RSC_RAY_TEMP_DIR meanwhile)
    serve_folder = ray_session.session_dir / "logs" / "serve"
    announcements = _announcements(serve_folder, "is version 2 on all 2 replicas")
    assert any("is version 2 on all 2 replicas" in line for line in announcements), announcements
    announced = [event for event in statsd.events if f"{cfg.model_name}@champion -> version 2" in event]
    assert any("on all 2 replicas" in event for event in announced), statsd.events  # the switch app's
    counted = {
        m[3]["model_version"]
        for m in map(parse, statsd.lines)
        if m[0] == names.SERVE_REQUESTS and m[3]["endpoint"] == "/v1/act" and m[3]["status_class"] == "2xx"
    }
    assert {"1", "2"} <= counted  # requests are counted under the version that answered them
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["model_version"] == 1 and 0 <= health["alias_checked_s_ago"] < 5  # the module's app too


def _announcements(folder: Path, wanted: str, timeout_s: float = 30.0) -> list[str]:
    """The controllers' ``switch announced`` lines in the Serve logs in ``folder``, read again until
    one says ``wanted`` (Serve may write replica logs through a buffer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        files = folder.glob("replica_*AliasController*.log")
        lines = [line for path in files for line in path.read_text(errors="replace").splitlines()]
        found = [line for line in lines if "switch announced" in line]
        if any(wanted in line for line in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.slow
def test_rsc_serve_runs_the_champion_on_localhost_until_interrupted(served, tmp_path):
    """``rsc serve`` with its own in-process Ray: answers on 127.0.0.1, stops cleanly on Ctrl-C."""
    cfg = served[0]
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "rsc",
        "serve",
        str(CONFIGS / "base.yaml"),
        str(CONFIGS / "smoke.yaml"),
        f"storage.root={cfg.storage.root}",
        f"serve.port={port}",
        f"registry.model_name={cfg.model_name}",  # the fixture's lineage (its symbols differ)
        "monitor.enabled=false",
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read_output() -> None:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops it"):  # printed once the endpoint answers
                ready.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        assert ready.wait(timeout=240), "".join(lines)[-3000:]
        url = f"http://127.0.0.1:{port}"
        model = requests.get(f"{url}/v1/model", timeout=10).json()
        assert model["model_name"] == cfg.model_name and model["alias"] == "champion"
        w, f = model["window"], len(model["feature_names"])
        answer = requests.post(f"{url}/v1/act", json={"features": [[0.0] * f] * w}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model_version"] == model["model_version"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
        reader.join(timeout=10)
    output = "".join(lines)
    assert process.returncode == 0, output[-3000:]
    assert f"serving {cfg.model_name}@champion at http://127.0.0.1:{port}" in output
    assert "stopped" in output


def test_an_app_started_before_any_champion_answers_503_then_serves_the_first_one(served, ray_session):
    """A fresh install: the RayService's app starts with no @champion; it must not fail its deployment."""
    from ray import serve

    cfg, uris, _, _ = served
    fresh = cfg.model_copy(
        update={
            "serve": cfg.serve.model_copy(update={"app_name": "fresh", "route_prefix": "/fresh"}),
            "registry": cfg.registry.model_copy(update={"model_name": "fresh-policy"}),
        }
    )
    url = deploy(fresh.serve, ray_session.address, fresh.tracking_uri, "fresh-policy", None)
    try:
        health = requests.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["model_version"] is None and health.json()["status"] == "waiting for a model"
        for method, route in (("post", "/v1/act"), ("get", "/v1/model")):
            kwargs = {"json": {"features": [[0.0]]}} if method == "post" else {}
            answer = getattr(requests, method)(f"{url}{route}", timeout=10, **kwargs)
            assert answer.status_code == 503, (route, answer.text)
            assert "'fresh-policy' has no @champion version yet" in answer.json()["detail"]
        register_policy_run(fresh, uris, 7, sharpe=1.0)  # the first version becomes champion
        deadline = time.monotonic() + 30
        while requests.get(f"{url}/healthz", timeout=10).json()["model_version"] != 1:
            assert time.monotonic() < deadline, "the app never picked up the first champion"
            time.sleep(0.5)
        assert requests.get(f"{url}/v1/model", timeout=10).json()["model_version"] == 1
    finally:
        serve.delete("fresh")
