"""Where a run's output goes: ``<run root>/logs/``, one file per process, so the terminal stays readable.

``rsc run`` writes its own output (the KFP runner, the paper replay) to ``run.log``, the Ray head's to
``ray-head.log``, and each pipeline step writes ``<stage>.log`` (Ray, RLlib and Tune included: the step
points its file descriptors there). Progress events (a stage started or ended, a trial or an iteration
reported) go to ``events.jsonl`` through the ``rsc.progress`` logger, and the terminal shows only those
(:mod:`rsc.launch.progress`). On a Kubeflow cluster none of this is set up: a step's output stays in its
pod's log. For an ``s3://`` storage root the files are written locally during the run and copied under
the run root when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rsc.storage import Storage
from rsc.storage.layout import RunLayout

LOG_DIR_ENV = "RSC_LOG_DIR"  # set by `rsc run` (unless -v): steps write <stage>.log there
EVENTS_ENV = "RSC_EVENTS_FILE"  # set by `rsc run`: steps append progress events there
RUN_LOG = "run.log"
EVENTS_FILE = "events.jsonl"
# Records on this logger and its children (``rsc.progress.tune``, ``rsc.progress.train``; the name is
# the contract, so the rl and stages packages need not import this one) become progress events.
PROGRESS_LOGGER = "rsc.progress"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLogs:
    """The local folder a run's logs are written to, and where they end up (None: already there)."""

    directory: Path
    upload_to: str | None

    @property
    def events(self) -> Path:
        return self.directory / EVENTS_FILE

    def stage_log(self, stage: str) -> Path:
        return self.directory / f"{stage}.log"

    @classmethod
    def for_run(cls, storage: Storage, run_root: str) -> RunLogs:
        """``<run root>/logs`` itself for a file:// root, else a local folder copied there at the end."""
        uri = RunLayout(run_root).logs
        local = storage.local_path(uri)
        if local is not None:
            local.mkdir(parents=True, exist_ok=True)
            return cls(local, None)
        return cls(Path(tempfile.mkdtemp(prefix="rsc-logs-")), uri)

    def publish(self, storage: Storage) -> str:
        """Copy the files to the run root when it is remote; returns where the logs are."""
        if self.upload_to is None:
            return str(self.directory)
        storage.upload_dir(self.directory, self.upload_to)
        return self.upload_to


class _EventHandler(logging.Handler):
    """Appends one JSON line per record of the progress logger to the events file."""

    def __init__(self, path: Path, stage: str | None):
        super().__init__(logging.INFO)
        self.path, self.stage = path, stage

    def emit(self, record: logging.LogRecord) -> None:
        event = {
            "time": record.created,
            "stage": getattr(record, "stage", self.stage),
            "kind": getattr(record, "kind", "info"),
            "message": record.getMessage(),
            "seconds": getattr(record, "seconds", None),
        }
        line = (json.dumps(event) + "\n").encode()
        # One append per event: concurrent writers (the run and a step) never interleave a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def progress_logger() -> logging.Logger:
    return logging.getLogger(PROGRESS_LOGGER)


@contextmanager
def _event_handler(path: Path | None, stage: str | None) -> Iterator[None]:
    """Progress records into ``path`` (none when ``path`` is None or a handler already writes them)."""
    logger = progress_logger()
    if path is None or any(isinstance(h, _EventHandler) for h in logger.handlers):
        yield
        return
    handler = _EventHandler(path, stage)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextmanager
def _descriptors_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``path`` (what Ray's C++ core and child processes write to)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


@contextmanager
def step_logs(stage: str, redirect: bool = True) -> Iterator[None]:
    """One pipeline step's logs and its start/end events, when ``rsc run`` asked for them.

    ``redirect=False`` sends the events only (``rsc run``'s own phases: its output is captured already).

    A failure is logged with its traceback into the step's own log and reported as an event carrying
    its last line, then re-raised for KFP to mark the step failed.
    """
    directory = os.environ.get(LOG_DIR_ENV)
    events = os.environ.get(EVENTS_ENV)
    progress = progress_logger()
    started = time.monotonic()
    with _event_handler(Path(events) if events else None, stage):
        progress.info("started", extra={"kind": "start", "stage": stage})
        output = _descriptors_to(Path(directory) / f"{stage}.log") if directory and redirect else _nothing()
        try:
            with output:
                try:
                    yield
                except BaseException:
                    logging.getLogger(f"rsc.stages.{stage}").error(
                        "%s failed:\n%s", stage, traceback.format_exc()
                    )
                    raise
        except BaseException as error:
            last = str(error).strip().splitlines()
            progress.info(
                "%s: %s",
                type(error).__name__,
                last[-1] if last else "",
                extra={"kind": "failed", "stage": stage, "seconds": time.monotonic() - started},
            )
            raise
        progress.info("done", extra={"kind": "end", "stage": stage, "seconds": time.monotonic() - started})


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _Tee:
    """A text stream writing to several (the terminal and the run log, with ``-v``)."""

    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def capture_run_output(logs: RunLogs, verbose: bool) -> Iterator[None]:
    """This process's output (KFP's runner prints every step's output) into ``run.log``.

    Steps inherit ``RSC_EVENTS_FILE`` and, unless ``verbose``, ``RSC_LOG_DIR``; with ``verbose`` the
    steps' full output streams through this process to the terminal as well as to ``run.log``.
    """
    run_log = open(logs.directory / RUN_LOG, "a", buffering=1)  # noqa: SIM115 - closed below
    terminal = sys.__stdout__
    stream = _Tee(terminal, run_log) if verbose else run_log
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_streams = sys.stdout, sys.stderr
    saved_env = {key: os.environ.get(key) for key in (LOG_DIR_ENV, EVENTS_ENV)}
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    os.environ[EVENTS_ENV] = str(logs.events)
    if verbose:
        os.environ.pop(LOG_DIR_ENV, None)
    else:
        os.environ[LOG_DIR_ENV] = str(logs.directory)
    sys.stdout = sys.stderr = stream
    try:
        with _event_handler(logs.events, None):
            yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        root.handlers, root.level = saved_handlers, saved_level
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        run_log.close()
