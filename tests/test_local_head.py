"""The local Ray head on a machine where Ray never ran, its failures, and a port someone else holds."""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from rsc.cluster import local
from rsc.cluster.local import ensure_auth_token, free_port, local_head
from rsc.system.processes import PortInUse, ProcessFailed, require_free_port, tail
from tests.conftest import CONFIGS, PROJECT

AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def fresh_home_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in AUTH_VARIABLES}
    return {**env, "HOME": str(home)}


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """A HOME where Ray never ran, and no token in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for key in AUTH_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    return home


def test_token_is_generated_where_none_exists(fresh_home):
    path = ensure_auth_token()
    assert path == fresh_home / ".ray" / "auth_token"
    assert len(path.read_text().strip()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.environ["RAY_AUTH_MODE"] == "token"  # what every child the run starts inherits
    token = path.read_text()
    assert ensure_auth_token() == path and path.read_text() == token  # an existing token is kept


def test_a_missing_token_path_is_named(fresh_home, monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match=r"RAY_AUTH_TOKEN_PATH names .*nowhere"):
        ensure_auth_token()


@pytest.mark.slow
def test_head_starts_and_runs_a_task_where_ray_never_ran(tmp_path):
    """A new process, HOME empty: the head generates its token and a client runs a task with it."""
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(
        f"""
        import ray
        from rsc.cluster.local import local_head
        with local_head(num_cpus=1, dashboard_port={free_port()}, log_dir={str(tmp_path / "logs")!r}) as head:
            ray.init(address=head.address, log_to_driver=False)
            print("answer", ray.get(ray.remote(lambda: 6 * 7).remote()))
            ray.shutdown()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=fresh_home_env(home), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "answer 42" in done.stdout
    assert (home / ".ray" / "auth_token").is_file()
    assert (tmp_path / "logs" / "ray-head.log").is_file()


def test_a_head_that_exits_early_reports_its_log(tmp_path, monkeypatch):
    fake_ray = tmp_path / "ray"
    fake_ray.write_text(
        "#!/bin/sh\necho 'starting'\necho 'Token authentication is enabled but no token' >&2\nexit 3\n"
    )
    fake_ray.chmod(0o755)
    monkeypatch.setattr(local, "RAY_EXECUTABLE", fake_ray)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x" * 32)
    with (
        pytest.raises(ProcessFailed) as raised,
        local_head(dashboard_port=free_port(), log_dir=tmp_path / "logs"),
    ):
        pass
    message = str(raised.value)
    assert "exited with code 3" in message
    assert str(tmp_path / "logs" / "ray-head.log") in message
    assert "Token authentication is enabled but no token" in message  # the reason, not thrown away


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def held_port():
    """An HTTP server on 127.0.0.1:8265 (a free port when 8265 is taken) that records what it gets."""
    _Recorder.requests = []
    try:
        server = http.server.HTTPServer(("127.0.0.1", 8265), _Recorder)
    except OSError:
        server = http.server.HTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_require_free_port_names_the_holder(held_port):
    with pytest.raises(PortInUse, match=rf"port {held_port} on 127.0.0.1 .* held by pid {os.getpid()}"):
        require_free_port("127.0.0.1", held_port, "the Ray dashboard", "ray.dashboard_port")


def test_run_with_the_dashboard_port_held_stops_with_one_line(held_port, tmp_path):
    done = subprocess.run(
        [
            sys.executable, "-m", "rsc", "run", str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"),
            f"storage.root=file://{tmp_path}", f"ray.dashboard_port={held_port}", "monitor.enabled=false",
        ],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert f"port {held_port}" in errors[0] and "ray.dashboard_port" in errors[0]
    assert "Traceback" not in done.stderr
    assert _Recorder.requests == []  # nothing was sent to the process holding the port


def test_tail_keeps_the_last_non_empty_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)) + "\n\n")
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""
