"""The ``kuberay`` launcher: create a RayJob, wait for its end, fail with its message, delete on cancel.

The only user of the ``kubernetes`` client. It needs the verbs create, get, watch and delete on
``rayjobs.ray.io`` in one namespace (k8s/rbac.yaml, or the chart's pipeline Role) and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from rsc.cluster.rayjob import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

# The namespace of a pod's own ServiceAccount, mounted by Kubernetes into every pod.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SUCCEEDED = "SUCCEEDED"
# KubeRay's JobDeploymentStatus values after which nothing more happens to the job.
COMPLETE = "Complete"
FAILED = ("Failed", "ValidationFailed")


class RayJobFailed(RuntimeError):
    """The RayJob ended without its job succeeding; the message is KubeRay's."""


@dataclass(frozen=True)
class RayJobOutcome:
    name: str
    namespace: str
    job_status: str
    dashboard_url: str | None
    seconds: float


def api_client() -> client.ApiClient:
    """The step pod's ServiceAccount when running in a cluster, else the kube config's current context."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=_kubeconfig())
    return client.ApiClient()


def _kubeconfig() -> str | None:
    """$KUBECONFIG as it is now (the client library reads it once, at import)."""
    return os.environ.get("KUBECONFIG") or None


def current_namespace(configured: str | None) -> str:
    """``configured``, else the pod's own namespace, else the kube config context's, else ``default``."""
    if configured:
        return configured
    if POD_NAMESPACE_FILE.is_file():
        return POD_NAMESPACE_FILE.read_text().strip()
    try:
        _, context = config.list_kube_config_contexts(config_file=_kubeconfig())
        return context["context"].get("namespace") or "default"
    except (config.ConfigException, KeyError, TypeError):
        return "default"


def _status(job: dict[str, Any]) -> dict[str, Any]:
    return job.get("status") or {}


def _is_terminal(job: dict[str, Any]) -> bool:
    state = _status(job).get("jobDeploymentStatus", "")
    return state == COMPLETE or state in FAILED


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Kubernetes stops a cancelled step's pod with SIGTERM; turn it into SystemExit so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RayJobs:
    """The four calls the launcher makes on ``rayjobs.ray.io`` in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.api = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                raise RayJobFailed(f"rayjob {self.namespace}/{name} was deleted before it finished") from None
            raise

    def delete(self, name: str) -> None:
        """Delete the RayJob; its RayCluster and pods go with it (owner references)."""
        try:
            self.api.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body=client.V1DeleteOptions(propagation_policy="Background"),
            )
            log.info("rayjob %s/%s deleted", self.namespace, name)
        except ApiException as error:
            if error.status != 404:
                raise

    def wait(self, name: str, timeout_s: float, watch_s: int) -> dict[str, Any]:
        """Watch the RayJob until KubeRay reports a terminal state; TimeoutError after ``timeout_s``.

        Each watch request lasts at most ``watch_s``; after it (or after a 410 Gone) the object is read
        again, so a dropped connection or a compacted history costs one GET, not the step.
        """
        deadline = time.monotonic() + timeout_s
        job = self.get(name)
        seen = ""
        while True:
            state = _status(job).get("jobDeploymentStatus", "")
            if state != seen:
                seen = state
                url = _status(job).get("dashboardURL")
                log.info(
                    "rayjob %s/%s: %s%s", self.namespace, name, state or "New", f" ({url})" if url else ""
                )
            if _is_terminal(job):
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"rayjob {self.namespace}/{name} not finished after {timeout_s:.0f}s "
                    f"(state {state or 'New'})"
                )
            job = self._watch_once(name, job, max(1, int(min(watch_s, remaining))))

    def _watch_once(self, name: str, job: dict[str, Any], seconds: int) -> dict[str, Any]:
        stream = watch.Watch()
        try:
            for event in stream.stream(
                self.api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=job["metadata"]["resourceVersion"],
                timeout_seconds=seconds,
                _request_timeout=seconds + 30,
            ):
                if event["type"] == "DELETED":
                    raise RayJobFailed(f"rayjob {self.namespace}/{name} was deleted before it finished")
                if event["type"] in ("ADDED", "MODIFIED"):
                    job = event["object"]
                    if _is_terminal(job):
                        stream.stop()
                        return job
        except ApiException as error:
            if error.status != 410:  # 410 Gone: the watch history moved on; read the object again
                raise
        return self.get(name)


def run_rayjob(
    body: dict[str, Any],
    namespace: str | None,
    timeout_s: float,
    watch_s: int = 60,
    api: client.ApiClient | None = None,
) -> RayJobOutcome:
    """Create the RayJob, wait for it, and raise :class:`RayJobFailed` with KubeRay's message if it failed.

    A timeout, an interrupt or SIGTERM (a cancelled pipeline step) deletes the RayJob, so no Ray
    cluster or GPU outlives the step that asked for it. A failed job is kept for inspection until
    its ``ttlSecondsAfterFinished``.
    """
    jobs = RayJobs(api or api_client(), current_namespace(namespace))
    name = body["metadata"]["name"]
    started = time.monotonic()
    created = False
    with _sigterm_as_exit():
        try:
            jobs.create(body)
            created = True
            log.info("rayjob %s/%s created", jobs.namespace, name)
            job = jobs.wait(name, timeout_s, watch_s)
        except BaseException:
            if created:
                jobs.delete(name)
            raise
    status = _status(job)
    job_status = status.get("jobStatus", "")
    if status.get("jobDeploymentStatus") != COMPLETE or job_status != SUCCEEDED:
        reason = status.get("reason") or status.get("jobDeploymentStatus") or "unknown"
        message = status.get("message") or "no message from KubeRay"
        raise RayJobFailed(
            f"rayjob {jobs.namespace}/{name} failed ({reason}, job status {job_status or 'none'}): {message}"
        )
    return RayJobOutcome(
        name, jobs.namespace, job_status, status.get("dashboardURL"), time.monotonic() - started
    )
