"""One source of truth for the version every replica serves, and the announcement of a switch.

The ``AliasController`` deployment (one replica) is the only thing that resolves the alias in MLflow,
every ``serve.alias_poll_s``. Policy replicas long-poll it for the version to serve, load a new one
beside the old, swap, and report what they now serve (a report doubles as a heartbeat). When every
running replica reports the new version the controller *announces* the switch: a log line, a Datadog
event, and ``announced_version`` at ``/v1/model``. A request reads its replica's version once, when it
starts, so a request started after the announcement is answered by the new version, whichever replica
takes it. A rollback is one more alias move, and so one more announced switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from ray import serve

from rsc.config.settings import MonitorSettings
from rsc.monitor import Event, MetricsSink, NullSink, sink_from_settings
from rsc.registry.tracking import resolve_alias, use_registry

log = logging.getLogger("ray.serve")  # Serve writes this logger to the replica's log file

POLICY_DEPLOYMENT = "PolicyServer"
LIVE_STATES = ("STARTING", "UPDATING", "RECOVERING", "RUNNING")  # replicas that serve, or soon will
HEARTBEAT_S = 2.0  # a replica reports at least this often
STALE_AFTER_S = 3 * HEARTBEAT_S  # a replica silent for longer is gone (scaled down or restarted)


@dataclass(frozen=True)
class Report:
    version: int | None
    at: float  # monotonic time of the report


@dataclass(frozen=True)
class Announcement:
    version: int
    previous: int | None
    replicas: int
    seconds: float  # from the alias move seen to every replica serving the version


def live_replicas(app_name: str) -> int | None:
    """Serve's count of the policy replicas in ``app_name`` that serve or are starting to (None when
    Serve cannot say). A starting replica counts: it must report the new version before the announcement."""
    try:
        status = serve.status().applications[app_name].deployments[POLICY_DEPLOYMENT]
    except Exception as error:  # no status (yet): announce on the reports alone
        log.warning("no replica count from Serve: %s", error)
        return None
    return sum(int(status.replica_states.get(state, 0)) for state in LIVE_STATES)


@serve.deployment(
    name="AliasController", num_replicas=1, max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}
)
class AliasController:
    """Resolves ``models:/<model_name>@<alias>`` for every replica of the app and announces switches."""

    async def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        alias: str,
        poll_s: float,
        monitor: MonitorSettings | None = None,
    ):
        self.model_name, self.alias, self.poll_s = model_name, alias, poll_s
        self.sink: MetricsSink = NullSink() if monitor is None else sink_from_settings(monitor, "rsc-serve")
        self.reports: dict[str, Report] = {}
        self.announced: Announcement | None = None
        self.moved_at = time.monotonic()
        self.previous: int | None = None
        self.last_error: str | None = None
        self.changed, self.announcing = asyncio.Condition(), asyncio.Lock()
        self.target: int | None = None
        await asyncio.to_thread(use_registry, tracking_uri)
        self.target = await self._resolve()
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _resolve(self) -> int | None:
        try:
            version = await asyncio.to_thread(resolve_alias, self.model_name, self.alias)
        except Exception as error:  # the registry is down: keep the last target, say why
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("alias check failed, target stays version %s: %s", self.target, error)
            return self.target
        self.last_error = None
        return version

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            version = await self._resolve()
            if version is not None and version != self.target:
                log.info(
                    "%s@%s moved to version %d (was %s): switching the replicas",
                    self.model_name, self.alias, version, self.target,
                )  # fmt: skip
                self.previous, self.target, self.moved_at = self.target, version, time.monotonic()
                async with self.changed:
                    self.changed.notify_all()

    def check_health(self) -> None:
        if self._poller.done():
            raise RuntimeError("the alias poller stopped")

    async def wait_for_target(self, known: int | None, timeout_s: float = HEARTBEAT_S) -> int | None:
        """The version to serve: at once when it differs from ``known``, else when it changes or after
        ``timeout_s`` (a long poll, so a switch reaches the replicas without their polling MLflow)."""
        if self.target != known:
            return self.target
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout_s)
        return self.target

    async def report(self, replica: str, version: int | None) -> None:
        """A replica serves ``version`` now; the switch is announced once every running replica does."""
        now = time.monotonic()
        self.reports[replica] = Report(version, now)
        self.reports = {r: seen for r, seen in self.reports.items() if now - seen.at <= STALE_AFTER_S}
        async with self.announcing:  # one announcement per switch, however many reports arrive at once
            target = self.target
            if target is None or (self.announced and self.announced.version == target):
                return
            if any(seen.version != target for seen in self.reports.values()):
                return
            live = await asyncio.to_thread(live_replicas, serve.get_replica_context().app_name)
            if live is not None and len(self.reports) < live:
                return  # a replica has not reported yet
            if self.target != target:
                return  # the alias moved again meanwhile
            self.announced = Announcement(target, self.previous, len(self.reports), now - self.moved_at)
            self._announce(self.announced)

    def _announce(self, done: Announcement) -> None:
        text = (
            f"{self.model_name}@{self.alias} is version {done.version} on all {done.replicas} replicas "
            f"(was {done.previous}; {done.seconds:.1f}s after the alias moved)"
        )
        log.info("switch announced: %s", text)
        self.sink.send(
            Event(
                f"rsc serve: {self.model_name}@{self.alias} -> version {done.version}",
                text,
                "success",
                {"model_name": self.model_name, "alias": self.alias, "model_version": str(done.version)},
                f"rsc-serve-switch-{self.model_name}",
            )
        )

    async def status(self) -> dict:
        """What ``/v1/model`` and ``/healthz`` show of the switch."""
        return {
            "target_version": self.target,
            "announced_version": self.announced.version if self.announced else None,
            "replica_versions": {replica: seen.version for replica, seen in sorted(self.reports.items())},
            "alias_error": self.last_error,
        }
