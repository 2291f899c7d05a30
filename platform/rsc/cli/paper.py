"""``rsc paper start | status | stop``: the paper trader as a long-running process.

``start`` runs in the foreground (``--detach``: in the background, logging to
``<run root>/logs/paper-<session>.log``; one that fails at once is reported with that log's end) and
writes a pid file beside the ledger (under ``~/.cache/rsc/paper/`` for an ``s3://`` storage root); ``stop``
sends SIGTERM, on which the trader commits the bar in hand and exits; ``status`` reads the ledger. A decay
or drift alert starts a challenger run with ``paper.challenger_runs`` (:mod:`rsc.cli.challenger`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsc.cli import SettingsLoader, add_settings_arguments
from rsc.config import Settings
from rsc.monitor import names
from rsc.system.processes import ProcessFailed

HALTED_EXIT = 3  # `rsc paper start` exit status when a kill switch stopped the trader


def local_run_root(cfg: Settings) -> Path:
    if cfg.storage.root.startswith("file://"):
        return Path(cfg.run_root.removeprefix("file://"))
    return Path("~/.cache/rsc/paper").expanduser() / cfg.run.name


def pid_path(cfg: Settings) -> Path:
    return local_run_root(cfg) / "paper" / f"{cfg.paper.session}.pid"


def log_path(cfg: Settings) -> Path:
    """A detached trader's output: ``<run root>/logs/paper-<session>.log`` (a local run root for s3://)."""
    return local_run_root(cfg) / "logs" / f"paper-{cfg.paper.session}.log"


def _running(path: Path) -> int | None:
    """The pid in ``path`` when that process is alive, else None."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:  # alive, owned by someone else
        return pid
    return pid


def _detach(args: argparse.Namespace, log: Path, startup_s: float = 3.0) -> int:
    """Start the trader in the background; one that exits with an error at once is reported with its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = ["paper", "start", *args.config, "--env", args.env]
    with open(log, "ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "rsc", *argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        code = child.wait(timeout=startup_s)
    except subprocess.TimeoutExpired:
        print(f"paper trader started in the background (pid {child.pid}); log {log}")
        return 0
    if code == 0:
        print(f"paper trader ran to its end already; log {log}")
        return 0
    print(f"rsc: {ProcessFailed('the detached paper trader', code, log)}", file=sys.stderr)
    return 1


def cmd_start(args: argparse.Namespace, load: SettingsLoader) -> int:
    cfg = load(args)
    path = pid_path(cfg)
    running = _running(path)
    if running is not None:
        print(f"rsc: paper session {cfg.paper.session!r} is already running (pid {running})", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.detach:
        return _detach(args, log_path(cfg))
    from rsc.cli.challenger import ChallengerRuns
    from rsc.monitor import sink_from_settings
    from rsc.paper.app import build_trader

    sink = sink_from_settings(cfg.monitor, "rsc-paper")
    trader = build_trader(cfg, sink, on_alert=ChallengerRuns(cfg, args.config, args.env, sink))
    path.write_text(str(os.getpid()))
    previous = {
        sig: signal.signal(sig, lambda *_: trader.request_stop()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        outcome = trader.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        path.unlink(missing_ok=True)
    book = outcome.state.books["champion"]
    print(f"paper: {outcome.bars} bars ({outcome.stopped}); equity {_money(book.equity)}")
    print(f"ledger {outcome.ledger_uri}")
    return HALTED_EXIT if outcome.stopped.startswith("halted") else 0


def cmd_stop(args: argparse.Namespace, load: SettingsLoader) -> int:
    cfg = load(args)
    path = pid_path(cfg)
    pid = _running(path)
    if pid is None:
        path.unlink(missing_ok=True)
        print(f"rsc: paper session {cfg.paper.session!r} is not running", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not path.exists() or _running(path) is None:  # the trader removes its pid file on exit
            print(f"paper session {cfg.paper.session!r} stopped (pid {pid})")
            return 0
        time.sleep(0.1)
    print(f"rsc: pid {pid} did not stop within {args.timeout:.0f}s", file=sys.stderr)
    return 1


def _money(value: float) -> str:
    return f"{value:,.2f}"


def cmd_status(args: argparse.Namespace, load: SettingsLoader) -> int:
    from rsc.paper.app import ledger_uri
    from rsc.paper.ledger import Ledger
    from rsc.storage import Storage

    cfg = load(args)
    uri = ledger_uri(cfg)
    state = Ledger(Storage.from_settings(cfg.storage), uri).load()
    if state is None:
        print(f"rsc: no paper ledger at {uri}", file=sys.stderr)
        return 1
    console = Console(width=120, soft_wrap=True)
    pid = _running(pid_path(cfg))
    running = f"running (pid {pid})" if pid is not None else "not running"
    console.print(f"paper session [bold]{cfg.paper.session}[/] ({state.start.get('strategy')}): {running}")
    console.print(f"ledger {uri}: {state.seq} segments, last bar {state.timestamp}")
    table = Table(title="books")
    table.add_column("")
    for name in state.books:
        table.add_column(name, justify="right")
    books = list(state.books.values())
    rows = {
        "equity": [_money(b.equity) for b in books],
        "pnl": [f"{_money(b.pnl)} ({b.pnl / b.initial_cash:+.2%})" for b in books],
        "drawdown": [f"{b.drawdown:.2%}" for b in books],
        "cash": [_money(b.cash) for b in books],
        **{
            f"position {symbol}": [f"{b.units.get(symbol, 0.0):,.4f} ({b.weight(symbol):.1%})" for b in books]
            for symbol in state.start.get("symbols", [])
        },
        "fills / rejected": [f"{b.fills} / {b.rejects}" for b in books],
        "costs": [_money(b.costs) for b in books],
        "pending orders": [str(len(b.pending)) for b in books],
        "model version": [str(b.model_version) for b in books],
        "risk": [f"halted: {b.halted}" if b.halted else "trading" for b in books],
    }
    for label, values in rows.items():
        table.add_row(label, *values)
    console.print(table)
    for key, decision in sorted(state.decisions.items()):
        if decision["status"] == "ok":
            what = f"target {decision['target']:.2f} (model asked {decision['target_position']:.2f})"
        else:
            what = f"hold: {decision['reason']}"
        console.print(f"last decision {key} at {decision['timestamp']}: {what}")
    for check in names.CHECKS:
        guard = state.guards.get(check, {"status": "ok", "message": ""})
        console.print(f"check {check}: {guard['status']} {guard['message']}".rstrip())
    return 0


def register(commands: argparse._SubParsersAction, load: SettingsLoader) -> None:
    paper = commands.add_parser("paper", help="paper trading: start | status | stop")
    actions = paper.add_subparsers(dest="paper_command", required=True)
    for name, func, text in (
        ("start", cmd_start, "run the paper trader (resumes the session's ledger)"),
        ("status", cmd_status, "equity, pnl, positions, last decisions and checks from the ledger"),
        ("stop", cmd_stop, "stop a running trader gracefully (SIGTERM: it commits the bar in hand)"),
    ):
        command = actions.add_parser(name, help=text)
        add_settings_arguments(command)
        if name == "start":
            command.add_argument("--detach", action="store_true", help="run in the background")
        if name == "stop":
            command.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the exit")
        command.set_defaults(func=lambda args, f=func: f(args, load))
