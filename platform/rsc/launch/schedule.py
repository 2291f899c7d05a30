"""``rsc schedule``: the whole DAG again and again on this machine, each time as a new execution.

The cluster's scheduler is Kubeflow Pipelines' recurring runs (``rsc submit --schedule``); this is the
laptop's. It starts a run every ``every`` (measured from the start of the previous one: a run that
takes longer than the interval is followed at once, never overlapped), each with its own run id, so
every run keeps its own artifacts, logs and MLflow runs. A failed run is reported and the schedule
goes on; Ctrl-C stops it between or during runs. For calendar schedules ("weekdays at 22:00") use
cron with ``rsc run`` (see the README).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_every(text: str) -> float:
    """``30s``, ``15m``, ``6h``, ``1d`` -> seconds; anything else is one error saying what is accepted."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--every {text!r}: expected a positive number and a unit, e.g. 30s, 15m, 6h or 1d")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Tick:
    """One scheduled run: its number (from 1), its run id (None when it failed before one) and outcome."""

    number: int
    run_id: str | None
    seconds: float
    error: str | None = None


def run_on_schedule(
    run_once: Callable[[], str],
    every_s: float,
    times: int | None = None,
    report: Callable[[Tick], None] = lambda tick: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Tick]:
    """Call ``run_once`` (which returns the run id) every ``every_s`` seconds, ``times`` times (None:
    until interrupted). A run that raises is recorded with its error and the schedule goes on."""
    ticks: list[Tick] = []
    next_start = clock()
    while times is None or len(ticks) < times:
        wait = next_start - clock()
        if wait > 0:
            sleep(wait)
        started = clock()
        next_start = started + every_s
        try:
            run_id, error = run_once(), None
        except Exception as failure:  # the schedule outlives one bad run; the error is reported
            run_id, error = None, f"{type(failure).__name__}: {failure}"
        tick = Tick(len(ticks) + 1, run_id, clock() - started, error)
        ticks.append(tick)
        report(tick)
    return ticks
