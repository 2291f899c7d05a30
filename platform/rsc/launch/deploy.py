"""deploy: the policy endpoint answers with the registry's champion, and the step says what that means
for this run ("serving v3", "kept champion v2", "no champion yet").

On the run's own Ray head (``rsc run``) the step starts the Serve application; on a cluster the chart's
RayService owns Serve, so the step only waits for its endpoint to serve the current champion. Either
way a run whose model the gate rejected ends green: the endpoint keeps the champion it had, or, on a
fresh install, answers 503 until a version is promoted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from rsc.config import Settings
from rsc.registry.tracking import CHAMPION, resolve_alias, use_registry
from rsc.serve.deploy import base_url, deploy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployResult:
    url: str
    model_name: str
    model_version: int | None  # the version the endpoint serves (the champion); None: no champion yet
    registered_version: int | None  # the version this run registered
    note: str


def outcome(model_name: str, served: int | None, registered: int | None) -> str:
    """What the endpoint serves, said relative to this run's own version."""
    if served is None:
        return f"no champion yet: {model_name} answers 503 until a version is promoted"
    if registered is None or served == registered:
        return f"serving {model_name} v{served} (@{CHAMPION})"
    return f"kept champion v{served}; this run's v{registered} was not promoted"


def wait_for_champion(
    url: str, champion: Callable[[], int | None], timeout_s: float, poll_s: float = 2.0
) -> int | None:
    """Wait until ``url``'s ``/healthz`` reports the version ``champion()`` names (replicas follow the
    alias on their own). The champion is read again on every poll: another run may promote meanwhile."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        expected = champion()
        try:
            response = requests.get(f"{url}/healthz", timeout=10)
            response.raise_for_status()
            last = response.json().get("model_version")
            if last == expected:
                return expected
        except (requests.RequestException, ValueError) as error:
            last = error
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the endpoint {url} did not serve the champion (version {expected}) within "
                f"{timeout_s:.0f}s: {last}"
            )
        time.sleep(poll_s)


def _champion(cfg: Settings, model_name: str) -> Callable[[], int | None]:
    use_registry(cfg.tracking_uri)
    return lambda: resolve_alias(model_name, CHAMPION)


def run(
    cfg: Settings, model_name: str, version: int | str | None = None, timeout_s: float = 120.0
) -> DeployResult:
    """Serve ``model_name``'s champion on the run's Ray cluster (``ray.address``); it outlives the step."""
    if cfg.ray.address is None:
        raise ValueError(
            "deploy needs a running Ray cluster (ray.address): an in-process Ray ends with the step"
        )
    registered = int(version) if version not in (None, "") else None
    url = deploy(cfg.serve, cfg.ray.address, cfg.tracking_uri, model_name, cfg.monitor)
    served = wait_for_champion(url, _champion(cfg, model_name), timeout_s)
    result = DeployResult(url, model_name, served, registered, outcome(model_name, served, registered))
    log.info("deploy: %s at %s/v1/act", result.note, url)
    return result


def check_rayservice(
    cfg: Settings, model_name: str, version: int | str | None = None, timeout_s: float = 300.0
) -> DeployResult:
    """On a cluster: the RayService's endpoint (``serve.host:serve.port``) serves the current champion."""
    registered = int(version) if version not in (None, "") else None
    url = base_url(cfg.serve)
    served = wait_for_champion(url, _champion(cfg, model_name), timeout_s, poll_s=5.0)
    result = DeployResult(url, model_name, served, registered, outcome(model_name, served, registered))
    log.info("deploy: the RayService at %s: %s", url, result.note)
    return result
