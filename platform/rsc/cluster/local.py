"""A Ray head on 127.0.0.1 for the duration of a run: one cluster, one dashboard, one job list.

Pipeline steps run as separate processes; each connects to this head instead of starting its own
Ray, and the Serve application deployed by one step outlives it. Ray's token authentication stays
on: before the head starts, :func:`ensure_auth_token` makes sure a token exists (``ray get-auth-token
--generate`` writes ``~/.ray/auth_token`` on a machine where Ray never ran) and exports
``RAY_AUTH_MODE=token``, which every client the run starts inherits (pipeline steps, Serve, the
ray-jobs launcher) and which makes them send that token.
"""

from __future__ import annotations

import logging
import os
import shutil
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

from rsc.system.processes import ProcessFailed, require_free_port

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# The ``ray`` command of this environment (tests point it at a stand-in to make the head fail).
RAY_EXECUTABLE = Path(sys.executable).parent / "ray"
HEAD_LOG = "ray-head.log"
TEMP_DIR_ENV = "RSC_RAY_TEMP_DIR"  # the session folder of the head this process started


@dataclass(frozen=True)
class LocalHead:
    address: str  # host:port of the GCS, for ray.init(address=...)
    dashboard_url: str
    log_path: Path  # output of `ray start` (the head's own logs are in Ray's session folder)
    session_dir: Path  # Ray's session folder of this head (its logs, Serve's among them, under logs/)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def token_path() -> Path:
    """Where Ray reads its token from: ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()


def has_auth_token() -> bool:
    """A token is available to Ray clients in this environment."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = token_path()
    return path.is_file() and bool(path.read_text().strip())


def _token_mode_on() -> None:
    """``RAY_AUTH_MODE=token`` for this process and the processes it starts.

    Ray reads the mode into its config when it is imported; a process that imported Ray before (a test
    session, a notebook) gets the config refreshed the way Ray's own ``ray.init`` does it.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()


def ensure_auth_token() -> Path | None:
    """Token auth on for this process and its children, generating Ray's token file when none exists.

    Returns the token file (None when the token comes from ``RAY_AUTH_TOKEN``).
    """
    _token_mode_on()
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return None
    path = token_path()
    if has_auth_token():
        return path
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        raise RuntimeError(
            f"RAY_AUTH_TOKEN_PATH names {path}, which is missing or empty: point it at the cluster's token "
            "file, or unset it to let the run generate ~/.ray/auth_token"
        )
    done = subprocess.run(
        [str(RAY_EXECUTABLE), "get-auth-token", "--generate"], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 or not has_auth_token():
        raise RuntimeError(
            f"`ray get-auth-token --generate` failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
    path.chmod(0o600)
    log.info("generated a Ray authentication token in %s", path)
    return path


def _wait_for_port(port: int, process: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProcessFailed("`ray start --head`", process.returncode, log_path)
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise ProcessFailed(f"`ray start --head` (port {port} not open within {timeout_s:.0f}s)", None, log_path)


@contextmanager
def local_head(
    num_cpus: int | None = None,
    dashboard_port: int = 8265,
    timeout_s: float = 60.0,
    log_dir: Path | None = None,
) -> Iterator[LocalHead]:
    """Start ``ray start --head --block`` as a child process; stop it (and everything on it) on exit.

    Its output goes to ``<log_dir>/ray-head.log`` (a temporary folder when None); an early exit raises
    :class:`ProcessFailed` with that log's last lines. A dashboard port held by another process stops
    the start with :class:`PortInUse` before anything is sent to it.
    """
    require_free_port(HOST, dashboard_port, "the Ray dashboard and Jobs API", "ray.dashboard_port")
    ensure_auth_token()
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="rsc-ray-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / HEAD_LOG
    # A session folder of its own: Ray resolves "auto" (a job's driver joining its cluster) through a
    # pointer file in it, which another head on this machine would otherwise overwrite.
    temp_dir = Path(tempfile.mkdtemp(prefix="rsc-ray-", dir="/tmp"))  # short: Ray's socket paths live here
    os.environ[TEMP_DIR_ENV] = str(temp_dir)  # clients on this machine find the head's logs there
    port = free_port()
    command = [
        str(RAY_EXECUTABLE),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        f"--node-ip-address={HOST}",
        f"--port={port}",
        f"--dashboard-host={HOST}",
        f"--dashboard-port={dashboard_port}",
        f"--temp-dir={temp_dir}",
        # Ports Ray fixes by default (client server 10001, dashboard agent 52365, metrics): free ones, so
        # that a second head on this machine (another user's run, a test session) never answers for this
        # one; its dashboard would otherwise hand our jobs to that head's agent.
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    log.info("starting a Ray head on %s:%d (dashboard http://%s:%d)", HOST, port, HOST, dashboard_port)
    # A local head is torn down at once: there is no load balancer to drain Serve traffic from.
    env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    with open(log_path, "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        _wait_for_port(port, process, log_path, timeout_s)
        _wait_for_port(dashboard_port, process, log_path, timeout_s)  # the Jobs API lives on the dashboard
        yield LocalHead(
            f"{HOST}:{port}", f"http://{HOST}:{dashboard_port}", log_path, temp_dir / "session_latest"
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if os.environ.get(TEMP_DIR_ENV) == str(temp_dir):
            os.environ.pop(TEMP_DIR_ENV)
        log.info("Ray head stopped")
