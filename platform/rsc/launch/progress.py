"""What the terminal shows during ``rsc run``: a line per stage as it starts and ends, with its elapsed
time, a compact line per Tune trial result and training iteration, read from the events the steps
append to ``events.jsonl`` (:mod:`rsc.launch.logs`). Everything else is in the log files.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text


@dataclass(frozen=True)
class StageFailure:
    stage: str
    message: str
    seconds: float | None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m {rest:04.1f}s" if minutes else f"{rest:.1f}s"


class ProgressView:
    """Tails the events file in a thread; a spinner with elapsed time for the stage that is running."""

    def __init__(self, events: Path, console: Console, poll_s: float = 0.2):
        self.events, self.console, self.poll_s = events, console, poll_s
        self._offset = 0
        self._buffer = b""
        self._running: dict[str, TaskID] = {}
        self._failures: list[StageFailure] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, name="rsc-progress", daemon=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def __enter__(self) -> ProgressView:
        self._progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        self._progress.stop()

    @property
    def started(self) -> list[str]:
        """Stages that started and have not ended (the one that was running when a run failed)."""
        return list(self._running)

    @property
    def failures(self) -> list[StageFailure]:
        return list(self._failures)

    def sync(self) -> None:
        """Show every event written so far (before printing something that must come after them)."""
        self._read()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()

    def _read(self) -> None:
        with self._lock:
            self._read_new()

    def _read_new(self) -> None:
        try:
            with open(self.events, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._show(json.loads(line))

    def _show(self, event: dict) -> None:
        stage, kind, message = event.get("stage") or "run", event.get("kind"), event.get("message", "")
        seconds = event.get("seconds")
        out = self._progress.console
        if kind == "start":
            out.print(Text.assemble(("> ", "cyan"), stage))
            self._running[stage] = self._progress.add_task(f"{stage} running", total=None)
        elif kind in ("end", "failed"):
            task = self._running.pop(stage, None)
            if task is not None:
                self._progress.remove_task(task)
            line = f"{stage:<9} {_duration(seconds):>9}"
            if kind == "end":
                out.print(Text.assemble(("v ", "green"), line))
            else:
                out.print(Text.assemble(("x ", "red"), line, "  ", message))
                self._failures.append(StageFailure(stage, message, seconds))
        else:
            out.print(Text(f"    {stage}: {message}"), highlight=False)
