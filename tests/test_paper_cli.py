"""``rsc paper start | status | stop``, and the crash test: the trader as a real subprocess, killed
with SIGKILL mid-run, stopped with SIGTERM, restarted in the background, ends in exactly the state
of an uninterrupted run, with no fill lost or doubled. Decisions come from the stand-in endpoint of
tests/paper_tools.py (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from rsc.cli.main import main
from rsc.cli.paper import log_path, pid_path
from rsc.monitor import MemorySink
from rsc.paper.app import build_trader
from rsc.storage import Storage
from tests.conftest import CONFIGS, PROJECT
from tests.paper_tools import StandinPolicy, paper_settings, store_bars

BARS = 80


def overrides(root, url: str, *extra: str) -> list[str]:
    return [
        f"storage.root=file://{root}",
        "monitor.enabled=false",
        "run.name=paper",
        "data.symbols=[SYN]",
        "monitor.drift=false",
        "paper.risk.model_backoff_s=0.01",
        f"paper.endpoint={url}",
        *extra,
    ]


def cli(root, url: str, command: str, *extra: str) -> list[str]:
    return [
        "paper",
        command,
        str(CONFIGS / "base.yaml"),
        str(CONFIGS / "smoke.yaml"),
        *overrides(root, url, *extra),
    ]


def test_status_shows_books_decisions_and_checks(tmp_path, capsys):
    cfg = paper_settings(tmp_path, "paper.bars=12", "paper.risk.max_position=0.5")
    store_bars(cfg)
    with StandinPolicy(rule=lambda bars, position: 1) as policy:
        state = build_trader(cfg, MemorySink(), endpoint=policy.url).run().state
        assert main(cli(tmp_path, policy.url, "status", "paper.bars=12")) == 0
    out = capsys.readouterr().out
    book = state.books["champion"]
    assert "paper session default (rsc-demo): not running" in out
    assert f"13 segments, last bar {state.timestamp}" in out
    assert f"{book.equity:,.2f}" in out and f"{book.pnl:,.2f}" in out
    assert "position SYN" in out and f"{book.units['SYN']:,.4f} (50.0%)" in out
    assert f"last decision champion/SYN at {state.timestamp}: target 0.50 (model asked 1.00)" in out
    assert "check risk: ok" in out and "check model: ok" in out


def test_status_and_stop_without_a_trader_say_so(tmp_path, capsys):
    assert main(cli(tmp_path, "http://127.0.0.1:9", "status")) == 1
    assert main(cli(tmp_path, "http://127.0.0.1:9", "stop")) == 1
    err = capsys.readouterr().err
    assert "no paper ledger at file://" in err and "is not running" in err


def start(root, url: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rsc", *cli(root, url, "start", *extra)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_sigterm_and_detach_end_in_the_uninterrupted_state(tmp_path, capsys):
    settings = (f"paper.bars={BARS}", "paper.speed=20", "paper.session=crash")
    cfg = paper_settings(tmp_path, *settings)
    store_bars(cfg)
    with StandinPolicy() as policy:
        whole = build_trader(
            paper_settings(tmp_path, f"paper.bars={BARS}", "paper.session=whole"),
            MemorySink(),
            endpoint=policy.url,
        ).run()
        ledger = build_trader(cfg, MemorySink(), endpoint=policy.url).ledger

        # 1. SIGKILL in the middle of the run: no chance to clean up.
        first = start(tmp_path, policy.url, *settings)
        wait_for(lambda: len(ledger.segments()) >= 15)
        first.kill()
        first.wait(timeout=30)
        killed_at = len(ledger.segments())
        assert 15 <= killed_at < BARS + 1 and first.returncode == -9
        assert ledger.load().seq == killed_at  # every segment on disk is whole

        # 2. Restart, then a graceful stop (SIGTERM through `rsc paper stop`) a few bars later.
        second = start(tmp_path, policy.url, *settings)
        wait_for(lambda: len(ledger.segments()) >= killed_at + 5)
        assert main(cli(tmp_path, policy.url, "status", *settings)) == 0
        assert f"running (pid {second.pid})" in capsys.readouterr().out
        assert main(cli(tmp_path, policy.url, "stop", *settings)) == 0
        output = second.communicate(timeout=30)[0]
        assert second.returncode == 0, output
        assert (
            "(stop requested)" in output and f"resuming {ledger.uri} after segment {killed_at - 1}" in output
        )
        stopped_at = len(ledger.segments())
        assert killed_at + 5 <= stopped_at < BARS + 1
        assert not pid_path(cfg).exists()

        # 3. Finish in the background.
        assert main([*cli(tmp_path, policy.url, "start", *settings), "--detach"]) == 0
        wait_for(lambda: len(ledger.segments()) == BARS + 1 and not pid_path(cfg).exists())
    log = log_path(cfg).read_text()
    assert "(end of feed)" in log
    final = ledger.load()
    assert final.to_json() == whole.state.to_json()
    fills = [e["id"] for e in ledger.events() if e["type"] == "fill"]
    assert fills and len(fills) == len(set(fills))
    bars = [e["timestamp"] for e in ledger.events() if e["type"] == "bar"]
    assert len(bars) == BARS == len(set(bars))
    assert not any(
        name.endswith(".json") and ".tmp-" in name
        for name in os.listdir(tmp_path / "paper" / "paper" / "crash" / "segments")
    )
    assert Storage().exists(f"{ledger.uri}/segments/{BARS:012d}.json")


def test_a_detached_trader_that_fails_at_once_is_reported_with_its_log(tmp_path, capsys):
    """No bars stored for the run: the background trader exits at once, and `start` says why."""
    cfg = paper_settings(tmp_path)
    assert main([*cli(tmp_path, "http://127.0.0.1:9", "start"), "--detach"]) == 1
    error = capsys.readouterr().err
    assert "the detached paper trader exited with code 1" in error
    assert f"full log: {log_path(cfg)}" in error
    assert error.strip().splitlines()[-1] in log_path(cfg).read_text()  # the log's last line, quoted
