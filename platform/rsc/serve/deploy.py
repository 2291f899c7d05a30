"""Start (or update) the policy application on a running Ray cluster and wait until it answers."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import requests
from ray import serve
from ray.serve import Application

from rsc.config.settings import MonitorSettings, ServeSettings
from rsc.serve.app import PolicyServer
from rsc.serve.switch import AliasController
from rsc.system.processes import tail

log = logging.getLogger(__name__)


def base_url(settings: ServeSettings) -> str:
    return f"http://{settings.host}:{settings.port}{settings.route_prefix.rstrip('/')}"


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """Replicas (fixed, or autoscaled on ongoing requests), their CPUs and their request limit."""
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": settings.replica_cpus},
        "max_ongoing_requests": settings.max_ongoing_requests,
    }
    scaling = settings.autoscaling
    if scaling.enabled:
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = settings.num_replicas
    return options


def policy_app(
    settings: ServeSettings,
    tracking_uri: str,
    model_name: str,
    monitor: MonitorSettings | None = None,
    replicas_from_config: bool = False,
) -> Application:
    """The application: the PolicyServer deployment serving ``models:/<model_name>@<settings.alias>``
    and the AliasController that tells its replicas which version that is.

    ``replicas_from_config``: a Serve config file (a RayService's) sets the replicas and their resources
    in its ``deployments`` section, so the settings' values are left out.
    """
    alias, poll_s = settings.alias, settings.alias_poll_s
    controller = AliasController.bind(tracking_uri, model_name, alias, poll_s, monitor)
    server = PolicyServer if replicas_from_config else PolicyServer.options(**deployment_options(settings))
    return server.bind(tracking_uri, model_name, controller, settings, monitor)


def _serve_logs() -> Path:
    """Ray's documented Serve log folder of the session on this machine: the local head's own session
    folder (``RSC_RAY_TEMP_DIR``, set by ``rsc.cluster.local``), else Ray's default one."""
    root = Path(os.environ.get("RSC_RAY_TEMP_DIR") or Path(tempfile.gettempdir()) / "ray")
    return root / "session_latest" / "logs" / "serve"


def _replica_log_tail(lines: int = 15) -> str:
    """The newest replica log of this machine's Ray session, with its last lines ("" when none)."""
    logs = sorted(_serve_logs().glob("replica_*.log"), key=lambda path: path.stat().st_mtime)
    if not logs:
        return ""
    return f"\nreplica log {logs[-1]}:\n{tail(logs[-1], lines)}"


def wait_until_healthy(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(
        f"the policy endpoint at {url} did not become healthy within {timeout_s:.0f}s; see the replica's "
        "log in the Ray dashboard. Ray Serve keeps one HTTP host and port per cluster: if Serve already "
        "ran there with another serve.port, that port is the one listening" + _replica_log_tail()
    )


def deploy(
    settings: ServeSettings,
    ray_address: str | None,
    tracking_uri: str,
    model_name: str,
    monitor: MonitorSettings | None = None,
    timeout_s: float = 120.0,
) -> str:
    """Run the app on the cluster at ``ray_address`` (it outlives this process) and return its URL.

    With ``ray_address=None`` Ray starts in this process and the app lives as long as it does.
    """
    if not ray.is_initialized():
        ray.init(address=ray_address or "local", log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    app = policy_app(settings, tracking_uri, model_name, monitor)
    serve.run(app, name=settings.app_name, route_prefix=settings.route_prefix, blocking=False)
    url = base_url(settings)
    wait_until_healthy(url, timeout_s)
    log.info("serving %s@%s at %s", model_name, settings.alias, url)
    return url
