"""Sustained load on ``POST /v1/act``: closed-loop clients against the policy and a no-op, 1 and 2 replicas.

Run: ``PYTHONPATH=platform:. python benchmarks/serve_load.py [--seconds 60] [--clients 1 8 64]``.
Starts Ray and Serve on 127.0.0.1, registers a random policy shaped like PPO's default network (as
``benchmarks/serve_latency.py`` does) and deploys, for each replica count, the policy app and the no-op
that reads and parses the same body. Each cell of the matrix (app x replicas x clients) runs for
``--seconds``: every client is a thread with its own keep-alive connection that sends the next request
as soon as the previous answer is in (closed loop), and stops by itself at the deadline or after
``--max-requests`` requests. Printed per cell: requests/s, p50/p95/p99 latency and errors (a non-200
answer or a connection error; zero is the bar). The generator runs in this process beside Ray on the
same machine, so its own cost weighs on both apps alike; compare the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

import rsc  # noqa: F401  (sets RAY_AUTH_MODE before ray is imported)
from benchmarks.serve_latency import NAME, PPO_HIDDEN, answered, noop_apps, payloads, registered_policy
from rsc.cluster.local import free_port
from rsc.serve.deploy import policy_app


@dataclass
class Cell:
    """One client's (then one cell's) record: latencies in ms and the errors seen."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def add(self, other: Cell) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


def client(url: str, body: bytes, deadline: float, max_requests: int) -> Cell:
    """Back-to-back requests on one keep-alive connection until the deadline (closed loop)."""
    parts = urlsplit(url)
    record = Cell()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    while time.monotonic() < deadline and len(record.latencies) + record.errors < max_requests:
        started = time.perf_counter()
        try:
            connection.request("POST", parts.path, body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                record.errors += 1
                record.first_error = record.first_error or f"HTTP {response.status}: {answer[:120]!r}"
                continue
        except (OSError, http.client.HTTPException) as error:
            record.errors += 1
            record.first_error = record.first_error or f"{type(error).__name__}: {error}"
            connection.close()
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            continue
        record.latencies.append((time.perf_counter() - started) * 1e3)
    connection.close()
    return record


def load(url: str, body: bytes, clients: int, seconds: float, max_requests: int) -> dict:
    """One cell: ``clients`` closed-loop clients for ``seconds``; rate, percentiles and errors."""
    started = time.monotonic()
    deadline = started + seconds
    total = Cell()
    with ThreadPoolExecutor(clients) as pool:
        for record in pool.map(lambda _: client(url, body, deadline, max_requests), range(clients)):
            total.add(record)
    elapsed = time.monotonic() - started
    latencies = np.asarray(total.latencies) if total.latencies else np.array([np.nan])
    return {
        "rps": len(total.latencies) / elapsed,
        **{f"p{q}": float(np.percentile(latencies, q)) for q in (50, 95, 99)},
        "errors": total.errors,
        "first_error": total.first_error,
        "requests": len(total.latencies) + total.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of one cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64], help="concurrent clients")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="replicas of each app")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per client, a bound on a cell")
    args = parser.parse_args()
    import ray
    from ray import serve

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg, policy, bars = registered_policy(Path(tmp), PPO_HIDDEN)
        body = payloads(policy, bars)["features"]
        ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        for replicas in args.replicas:
            settings = cfg.serve.model_copy(update={"num_replicas": replicas, "replica_cpus": 1.0})
            _, reading = noop_apps(replicas)
            apps = {
                "no-op reading body": ("/noop", reading),
                "policy": ("/policy", policy_app(settings, cfg.tracking_uri, NAME, cfg.monitor)),
            }
            urls = {}
            for label, (prefix, app) in apps.items():
                serve.run(app, name=f"{prefix.strip('/')}-{replicas}", route_prefix=prefix, blocking=False)
                urls[label] = f"http://127.0.0.1:{port}{prefix}/v1/act"
                answered(urls[label], body, timeout_s=180)
            for clients in args.clients:
                for label, url in urls.items():  # the two apps take turns at each load
                    row = {"app": label, "replicas": replicas, "clients": clients}
                    row |= load(url, body, clients, args.seconds, args.max_requests)
                    rows.append(row)
                    print(
                        f"{label:<20} replicas {replicas}  clients {clients:>3}  {row['rps']:>8.1f} req/s  "
                        f"p50 {row['p50']:.1f}  p95 {row['p95']:.1f}  p99 {row['p99']:.1f} ms  "
                        f"errors {row['errors']}" + (f" ({row['first_error']})" if row["errors"] else ""),
                        flush=True,
                    )
            for label in apps:
                serve.delete(f"{apps[label][0].strip('/')}-{replicas}")
        serve.shutdown()
        ray.shutdown()
    print("\n| app | replicas | clients | requests/s | p50 ms | p95 ms | p99 ms | errors | vs no-op req/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = {(r["replicas"], r["clients"]): r["rps"] for r in rows if r["app"] == "no-op reading body"}
    for r in rows:
        ratio = r["rps"] / base[(r["replicas"], r["clients"])]
        print(
            f"| {r['app']} | {r['replicas']} | {r['clients']} | {r['rps']:,.0f} | {r['p50']:.1f} | "
            f"{r['p95']:.1f} | {r['p99']:.1f} | {r['errors']} | {ratio:.2f}x |"
        )
    total_errors = sum(r["errors"] for r in rows)
    print(f"\n{sum(r['requests'] for r in rows):,} requests, {total_errors} errors")
    sys.exit(1 if total_errors else 0)


if __name__ == "__main__":
    main()
