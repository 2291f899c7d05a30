"""What `rsc run` shows and keeps: a line per stage on the terminal, each step's output in its own log,
and a failing stage reported with its log's last lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from rsc.launch.logs import EVENTS_ENV, LOG_DIR_ENV
from rsc.launch.progress import ProgressView
from rsc.launch.run import RunFailed, execute
from tests.conftest import smoke_settings

STEP = """
import logging, os, sys
from rsc.launch.logs import step_logs
logging.basicConfig(level=logging.INFO, force=True)
with step_logs("tune"):
    os.write(1, b"written to fd 1 by native code\\n")
    print("printed by python", flush=True)
    logging.getLogger("rsc.progress.tune").info("trial 1  iteration 1/2  eval/sharpe 0.500")
    {body}
"""


def run_step(tmp_path, body: str = "pass") -> subprocess.CompletedProcess:
    env = {**os.environ, LOG_DIR_ENV: str(tmp_path), EVENTS_ENV: str(tmp_path / "events.jsonl")}
    script = textwrap.dedent(STEP).replace("{body}", body)
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def events(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]


def test_a_step_writes_its_output_to_its_log_and_its_progress_to_events(tmp_path):
    done = run_step(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing reaches the terminal
    log = (tmp_path / "tune.log").read_text()
    assert "written to fd 1 by native code" in log and "printed by python" in log
    kinds = [(e["stage"], e["kind"]) for e in events(tmp_path)]
    assert kinds == [("tune", "start"), ("tune", "info"), ("tune", "end")]
    assert events(tmp_path)[1]["message"] == "trial 1  iteration 1/2  eval/sharpe 0.500"
    assert events(tmp_path)[-1]["seconds"] >= 0


def test_a_failing_step_keeps_its_traceback_and_reports_the_failure(tmp_path):
    done = run_step(tmp_path, "raise ValueError(\"bars.csv: missing column 'close'\")")
    assert done.returncode == 1
    log = (tmp_path / "tune.log").read_text()
    assert "Traceback" in log and "missing column 'close'" in log
    failed = events(tmp_path)[-1]
    assert failed["kind"] == "failed" and failed["message"] == "ValueError: bars.csv: missing column 'close'"


def test_progress_view_prints_a_line_per_stage_event(tmp_path):
    path = tmp_path / "events.jsonl"
    rows = [
        {"stage": "ingest", "kind": "start", "message": "started"},
        {"stage": "ingest", "kind": "end", "message": "done", "seconds": 1.25},
        {"stage": "tune", "kind": "start", "message": "started"},
        {"stage": "tune", "kind": "info", "message": "trial a  iteration 1/4  eval/sharpe 0.123"},
        {"stage": "tune", "kind": "end", "message": "done", "seconds": 75.5},
        {"stage": "train", "kind": "start", "message": "started"},
        {"stage": "train", "kind": "failed", "message": "RuntimeError: boom", "seconds": 2.0},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = io.StringIO()
    with ProgressView(path, Console(file=out, width=80)) as view:
        view.sync()
    lines = [line for line in out.getvalue().splitlines() if line]
    assert lines == [
        "> ingest",
        "v ingest         1.2s",
        "> tune",
        "    tune: trial a  iteration 1/4  eval/sharpe 0.123",
        "v tune       1m 15.5s",
        "> train",
        "x train          2.0s  RuntimeError: boom",
    ]
    assert [(f.stage, f.message) for f in view.failures] == [("train", "RuntimeError: boom")]


def test_a_failing_stage_stops_the_run_with_its_log(tmp_path, ray_session):
    cfg = smoke_settings(tmp_path, f"ray.address={ray_session.address}", "data.symbols=[NOPE]")
    out = io.StringIO()
    with pytest.raises(RunFailed) as raised:
        execute(cfg, console=Console(file=out, width=100))
    message = str(raised.value)
    first = message.splitlines()[0]
    assert first.startswith("stage ingest failed: ") and "NOPE" in first
    log = next((tmp_path / "smoke").glob("*/logs/ingest.log"))  # under the execution's own root
    assert f"full log: {log}" in message and "Traceback" in log.read_text()
    assert "x ingest" in out.getvalue()
