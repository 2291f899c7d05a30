"""A Ray head on 127.0.0.1 for the duration of a run: one cluster, one dashboard, one job list.

Pipeline steps run as separate processes; each connects to this head instead of starting its own
Ray, and the Serve application deployed by one step outlives it. Ray's token authentication stays
on: clients find the token in ``~/.ray/auth_token`` once ``RAY_AUTH_MODE=token`` is set.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LocalHead:
    address: str  # host:port of the GCS, for ray.init(address=...)
    dashboard_url: str


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with code {process.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the Ray head did not open port {port} within {timeout_s:.0f}s")


@contextmanager
def local_head(
    num_cpus: int | None = None, dashboard_port: int = 8265, timeout_s: float = 60.0
) -> Iterator[LocalHead]:
    """Start ``ray start --head --block`` as a child process; stop it (and everything on it) on exit."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        f"--node-ip-address={HOST}",
        f"--port={port}",
        f"--dashboard-host={HOST}",
        f"--dashboard-port={dashboard_port}",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    log.info("starting a Ray head on %s:%d (dashboard http://%s:%d)", HOST, port, HOST, dashboard_port)
    # A local head is torn down at once: there is no load balancer to drain Serve traffic from.
    env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    try:
        _wait_for_port(port, process, timeout_s)
        _wait_for_port(dashboard_port, process, timeout_s)  # the Jobs API lives on the dashboard
        yield LocalHead(f"{HOST}:{port}", f"http://{HOST}:{dashboard_port}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _forget_cluster(f"{port}")
        log.info("Ray head stopped")


def _forget_cluster(port: str) -> None:
    """Remove Ray's pointer to this head so that a later bare ``ray.init()`` does not try to join it."""
    pointer = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if pointer.read_text().strip().endswith(f":{port}"):
            pointer.unlink()
    except OSError:
        pass
