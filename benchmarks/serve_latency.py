"""Latency and throughput of ``POST /v1/act`` against a no-op Ray Serve deployment, in one run.

Run: ``PYTHONPATH=platform:. python benchmarks/serve_latency.py [--hidden 64 64]``. Starts Ray in a
child process per ingress, registers a random policy shaped like PPO's default network (64x64 tanh;
``--hidden`` for others; window 30, 5 features) in a temporary MLflow registry, and serves, side by side:

- ``/noop``: a FastAPI deployment whose ``POST /v1/act`` returns a constant (Serve's own cost);
- ``/noop-body``: the same, but it reads and parses the request body;
- ``/policy``: the policy app with ``@serve.batch`` (``max_batch_size`` 16, the configured wait);
- ``/policy-unbatched``: the same app with ``serve.max_batch_size=1``.

Latency: sequential requests on one keep-alive connection (p50, p99). Peak throughput: ``wrk`` (Debian
package ``wrk``) at several connection counts when it is installed, else a thread pool of keep-alive
clients. Prints the figures and their ratios to the no-op; nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI

import rsc  # noqa: F401  (sets RAY_AUTH_MODE before ray is imported)
from rsc.cluster.local import free_port
from rsc.config import load_settings
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TEST, TIMESTAMP
from rsc.paper.decisions import INDICATOR_LOOKBACK  # bars the paper replay sends beyond the minimum
from rsc.registry.policy import Policy
from rsc.serve.deploy import policy_app
from rsc.storage import Storage
from tests.stored_run import register_policy_run, store_run

PROJECT = Path(__file__).resolve().parents[1]
NAME = "rsc-bench-syn-1d"
PPO_HIDDEN = (64, 64)  # rllib_configs/ppo.yaml: fcnet_hiddens
BATCH = 16  # max_batch_size of the batched policy app
# Ray Serve's HAProxy ingress: HAProxy takes HTTP and forwards it to the replicas' own HTTP servers
# (direct ingress), so a replica reads the request body locally instead of fetching it from the proxy
# actor. Documented in Ray's "Enable High Throughput on Ray Serve" guide.
INGRESS_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
INGRESS_NAMES = {"proxy": "Ray Serve's default Python HTTP proxy", "haproxy": "HAProxy, throughput-optimized"}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def sequential(url: str, body: bytes, n: int, warmup: int = 50) -> list[float]:
    """Latencies (ms) of ``n`` requests sent one after another on one keep-alive connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    latencies = []
    for i in range(warmup + n):
        started = time.perf_counter()
        status, answer = post(connection, parts.path, body)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}: {answer[:200]!r}")
        if i >= warmup:
            latencies.append((time.perf_counter() - started) * 1e3)
    connection.close()
    return latencies


def answered(url: str, body: bytes, timeout_s: float) -> None:
    """Wait until ``url`` answers 200 (the HTTP proxy learns new routes a moment after deployment)."""
    parts = urlsplit(url)
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            status, answer = post(
                http.client.HTTPConnection(parts.hostname, parts.port, timeout=30), parts.path, body
            )
            if status == 200:
                return
            last = f"{status}: {answer[:200]!r}"
        except (OSError, http.client.HTTPException) as error:
            last = str(error)
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s (last: {last})")


def wrk_peak(url: str, body: bytes, connections: int, seconds: float) -> float:
    """Requests/s that ``wrk`` reaches with ``connections`` keep-alive connections (2 threads)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests at {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def thread_peak(url: str, body: bytes, connections: int, seconds: float) -> float:
    """Requests/s of ``connections`` threads, each sending back to back on its own connection."""
    deadline = time.monotonic() + seconds

    def client(_: int) -> int:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        done = 0
        while time.monotonic() < deadline:
            status, answer = post(connection, parts.path, body)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}: {answer[:200]!r}")
            done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(client, range(connections)))
    return total / (time.monotonic() - started)


def noop_apps(replicas: int = 1):
    """Two deployments that answer ``POST /v1/act`` with a constant: one never reads the request body
    (Serve's floor), one reads and parses it as JSON (the floor of any endpoint that takes input: in Ray
    Serve the replica fetches the body from the HTTP proxy with one more actor call); ``replicas`` each."""
    from ray import serve

    answer = {"action": 0, "target_position": 0.0, "model_name": "noop", "model_version": 0}
    bare, reading = FastAPI(), FastAPI()

    @serve.deployment(name="NoOp", max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
    @serve.ingress(bare)
    class NoOp:
        @bare.post("/v1/act")
        async def act(self) -> dict:
            return answer

    @serve.deployment(name="NoOpReadingBody", max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
    @serve.ingress(reading)
    class NoOpReadingBody:
        @reading.post("/v1/act")
        async def act(self, body: dict) -> dict:  # read and parsed as JSON, then ignored
            return answer

    return NoOp.options(num_replicas=replicas).bind(), NoOpReadingBody.options(num_replicas=replicas).bind()


def registered_policy(root: Path, hidden: tuple[int, ...]):
    """Settings (base.yaml on a temporary root) and a random policy registered as champion."""
    cfg = load_settings(
        [PROJECT / "configs" / "base.yaml"],
        [
            f"storage.root=file://{root}",
            "data.symbols=[SYN]",
            "split.validation_end=2017-06-30",
            "registry.min_deflated_sharpe=null",
            "registry.require_beat_benchmark=false",
            f"registry.model_name={NAME}",  # the apps serve models:/<NAME>@champion
            "monitor.enabled=true",
            f"monitor.statsd_port={free_port()}",  # DogStatsD packets sent as in production, to nobody
        ],
    )
    uris = store_run(cfg)
    model_uri, _ = register_policy_run(cfg, uris, seed=1, sharpe=1.0, hidden=hidden)
    policy = Policy.load(Storage().local_path(model_uri))
    frame = Storage().read_dataset(uris["split"])
    bars = frame[(frame["part"] == TEST) & (frame[SYMBOL] == "SYN")].tail(
        policy.min_bars + INDICATOR_LOOKBACK
    )
    return cfg, policy, bars


def payloads(policy: Policy, bars) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    features = rng.normal(0, 0.02, (policy.window, len(policy.feature_names))).round(6).tolist()
    records = [{TIMESTAMP: str(r[TIMESTAMP]), **{c: r[c] for c in OHLCV_COLUMNS}} for _, r in bars.iterrows()]
    return {
        "features": json.dumps({"features": features, "position": 0.0}).encode(),
        "bars": json.dumps({"bars": records, "position": 0.0, "unrealised_return": 0.0}).encode(),
    }


def measure(apps: dict[str, str], body: bytes, args: argparse.Namespace, peak) -> dict[str, dict]:
    """Per app: latencies of all rounds and the best requests/s per connection count; the apps take
    turns in every round, so that load from elsewhere on the machine falls on all of them alike."""
    results = {
        name: {"latencies": [], "p50s": [], **{str(c): 0.0 for c in args.connections}} for name in apps
    }
    for _ in range(args.rounds):
        for name, url in apps.items():
            latencies = sequential(url, body, args.requests)
            results[name]["latencies"] += latencies
            results[name]["p50s"].append(percentile(latencies, 50))
        for connections in args.connections:
            for name, url in apps.items():
                rate = peak(url, body, connections, args.seconds)
                results[name][str(connections)] = max(results[name][str(connections)], rate)
    for row in results.values():
        row["p50"] = percentile(row["latencies"], 50)
        row["p99"] = percentile(row["latencies"], 99)
        row["peak"] = max(row[str(c)] for c in args.connections)
    return results


def haproxy_binary() -> str | None:
    """Where Ray Serve would find HAProxy: RAY_SERVE_HAPROXY_BINARY_PATH, else ``haproxy`` on PATH."""
    return os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") or shutil.which("haproxy")


def run_one(args: argparse.Namespace) -> dict:
    """Start Ray (in this process) with the ingress asked for, deploy the four apps, measure them."""
    if args.ingress == "haproxy":
        os.environ.update(INGRESS_ENV)  # read by Ray Serve's processes when they start
    import ray
    from ray import serve

    peak = wrk_peak if shutil.which("wrk") else thread_peak
    with tempfile.TemporaryDirectory() as tmp:
        hidden = tuple(args.hidden)
        cfg, policy, bars = registered_policy(Path(tmp), hidden)
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        bare, reading = noop_apps()
        batched = cfg.serve.model_copy(update={"max_batch_size": BATCH})
        unbatched = cfg.serve.model_copy(update={"max_batch_size": 1})
        deployments = {  # label -> (route prefix, application)
            "no-op": ("/noop", bare),
            "no-op reading body": ("/noop-body", reading),
            "policy": ("/policy", policy_app(batched, cfg.tracking_uri, NAME, cfg.monitor)),
            "policy unbatched": (
                "/policy-unbatched",
                policy_app(unbatched, cfg.tracking_uri, NAME, cfg.monitor),
            ),
        }
        bodies = payloads(policy, bars)
        apps = {}
        for label, (prefix, app) in deployments.items():
            serve.run(app, name=prefix.strip("/"), route_prefix=prefix, blocking=False)
            apps[label] = f"http://127.0.0.1:{port}{prefix}/v1/act"
            answered(apps[label], bodies["features"], timeout_s=120)
        results = measure(apps, bodies["features"], args, peak)
        bars_latency = sequential(apps["policy"], bodies["bars"], args.requests)
        serve.shutdown()
        ray.shutdown()
    return {
        "ingress": args.ingress,
        "client": peak.__name__,
        "load": os.getloadavg()[0],
        "policy": f"window {policy.window} x {len(policy.feature_names)} features, network {hidden}",
        "batching": f"max_batch_size {BATCH}, wait {cfg.serve.batch_wait_timeout_s}s",
        "bars": {"n": len(bars), "p50": percentile(bars_latency, 50), "p99": percentile(bars_latency, 99)},
        "apps": {name: {k: v for k, v in row.items() if k != "latencies"} for name, row in results.items()},
    }


def report(result: dict, connections: list[int]) -> None:
    apps = result["apps"]
    print(f"\n== ingress: {result['ingress']} ({INGRESS_NAMES[result['ingress']]}) ==")
    print(f"policy {result['policy']}; {result['batching']}; client {result['client']}")
    columns = ["p50", "p99", "peak", *(str(c) for c in connections)]
    print(f"{'features request (ms | req/s)':<30}" + "".join(f"{c:>10}" for c in columns))
    for name, row in apps.items():
        print(f"{name:<30}" + "".join(f"{row[c]:>10.1f}" for c in columns))
    spread = ", ".join(f"{name} {min(row['p50s']):.1f}..{max(row['p50s']):.1f}" for name, row in apps.items())
    print(f"p50 per round (ms): {spread}")
    bars = result["bars"]
    print(f"bars request ({bars['n']} bars, as the paper replay sends): ", end="")
    print(f"p50 {bars['p50']:.1f} ms, p99 {bars['p99']:.1f} ms")
    for baseline in ("no-op", "no-op reading body"):
        print(f"ratios to {baseline} (target: p50 within 1.5x):")
        for name in ("policy", "policy unbatched"):
            row, base = apps[name], apps[baseline]
            print(
                f"  {name:<18} p50 {row['p50'] / base['p50']:.2f}x  p99 {row['p99'] / base['p99']:.2f}x  "
                f"peak requests/s {row['peak'] / base['peak']:.2f}x"
            )
    batched, plain = apps["policy"], apps["policy unbatched"]
    gains = ", ".join(f"{c} connections {batched[str(c)] / plain[str(c)]:.2f}x" for c in connections)
    gain = batched["peak"] / plain["peak"]
    print(f"batching gain (requests/s, batched / unbatched): peak {gain:.2f}x ({gains})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which every app takes a turn")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64], help="client connections")
    parser.add_argument(
        "--ingress", choices=["proxy", "haproxy", "both"], default="both", help="Ray Serve's HTTP ingress"
    )
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=list(PPO_HIDDEN), help="hidden layer sizes of the network"
    )
    parser.add_argument("--json", action="store_true", help="print one mode's results as JSON (internal)")
    args = parser.parse_args()
    if args.ingress != "both":
        result = run_one(args)
        print(json.dumps(result) if args.json else "", flush=True)
        if not args.json:
            report(result, args.connections)
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    modes = ["proxy", "haproxy"] if haproxy_binary() else ["proxy"]
    if len(modes) == 1:
        print("no haproxy binary (apt install haproxy, or RAY_SERVE_HAPROXY_BINARY_PATH): proxy ingress only")
    for mode in modes:  # each in its own process: Ray Serve reads the ingress settings when it starts
        command = [sys.executable, __file__, *sys.argv[1:], "--ingress", mode, "--json"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        report(json.loads(out.strip().splitlines()[-1]), args.connections)


if __name__ == "__main__":
    main()
