"""What a decay or drift alert of the paper trader does: start a challenger run (``paper.challenger_runs``).

``kfp``: a run of the pipeline on Kubeflow Pipelines at ``paper.kfp_host``, with the trader's own
settings (files and overrides); ``local``: ``rsc run`` with them, in the background, its output in
``<run root>/logs/challenger-<time>.log``. The run is named ``<run.name>-challenger`` (the trader's own
executions stay its ``latest``), ingests afresh and registers its policy into the trader's lineage
(``registry.strategy`` pinned) as ``@challenger``; with ``registry.shadow_bars`` it then trades in
shadow beside the champion before the gate decides. At most one run starts per
``paper.challenger_cooldown_s``. Each start is a Datadog event and the tag ``rsc.event.challenger_run``
on the champion's version.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable

from rsc.config import Settings
from rsc.monitor import Event, MetricsSink

log = logging.getLogger(__name__)


class ChallengerRuns:
    """The ``on_alert`` of ``rsc paper start``: one challenger run per alert, at most one per cooldown."""

    def __init__(
        self,
        cfg: Settings,
        items: list[str],
        environment: str,
        sink: MetricsSink,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``items``: the trader's settings files and ``key=value`` overrides, for the run as well; the
        run gets a name of its own (so that it never becomes the trader's ``latest`` execution, which
        ``rsc paper status`` and ``stop`` find) and registers into the same lineage."""
        strategy = cfg.registry.strategy or cfg.run.name
        own = [f"run.name={cfg.run.name}-challenger", f"registry.strategy={strategy}"]
        self.cfg, self.environment, self.sink, self.clock = cfg, environment, sink, clock
        self.items = [*items, *own]
        self.started: list[str] = []  # where each run can be followed (a KFP URL or a log file)
        self._last: float | None = None

    def __call__(self, check: str, message: str) -> None:
        paper = self.cfg.paper
        if paper.challenger_runs == "off":
            return
        now = self.clock()
        if self._last is not None and now - self._last < paper.challenger_cooldown_s:
            log.info("challenger: %s alert within the cooldown of the last run; none started", check)
            return
        self._last = now
        where = self._submit() if paper.challenger_runs == "kfp" else self._run_locally()
        self.started.append(where)
        reason = f"{check}: {message}"
        log.warning("challenger: run started on the %s alert (%s): %s", check, message, where)
        self._record(reason, where)

    def _submit(self) -> str:
        from rsc.cli.submit import submit

        name = (
            f"{self.cfg.run.name}-challenger-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"  # the KFP run
        )
        host = str(self.cfg.paper.kfp_host)  # the settings require it with challenger_runs: kfp
        return submit(host, self.items, environment=self.environment, run_name=name)

    def _run_locally(self) -> str:
        from rsc.cli.paper import local_run_root

        logs = local_run_root(self.cfg) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"challenger-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
        with open(path, "ab") as output:
            subprocess.Popen(
                challenger_command(self.items, self.environment),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # it outlives the trader's own stop
            )
        return str(path)

    def _record(self, reason: str, where: str) -> None:
        """A Datadog event, and a tag on the champion's version (the registry may be elsewhere: logged)."""
        name = self.cfg.model_name
        self.sink.send(
            Event(
                f"rsc paper: challenger run started for {name}",
                f"{reason}. Follow it at {where}",
                "warning",
                {"strategy": self.cfg.paper.strategy, "model_name": name},
                f"rsc-challenger-{name}",
            )
        )
        try:
            from rsc.registry.promotion import record_event
            from rsc.registry.tracking import CHAMPION, resolve_alias, use_registry

            use_registry(self.cfg.tracking_uri)
            champion = resolve_alias(name, CHAMPION)
            if champion is not None:
                record_event(name, champion, "challenger_run", {"reason": reason, "run": where})
        except Exception as error:  # the run has started: an unreachable registry only loses the tag
            log.warning("challenger: could not tag the champion of %s: %s", name, error)


def challenger_command(items: list[str], environment: str) -> list[str]:
    """``rsc run`` with the trader's settings: a new execution of the whole DAG on the latest data."""
    return [sys.executable, "-m", "rsc", "run", *items, "--env", environment]
