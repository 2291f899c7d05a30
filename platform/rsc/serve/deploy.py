"""Start (or update) the policy application on a running Ray cluster and wait until it answers."""

from __future__ import annotations

import logging
import time

import ray
import requests
from ray import serve

from rsc.config.settings import ServeSettings
from rsc.registry.tracking import CHAMPION
from rsc.serve.app import PolicyServer

log = logging.getLogger(__name__)


def base_url(settings: ServeSettings) -> str:
    return f"http://{settings.host}:{settings.port}{settings.route_prefix.rstrip('/')}"


def deploy(
    settings: ServeSettings,
    ray_address: str | None,
    tracking_uri: str,
    model_name: str,
    timeout_s: float = 120.0,
) -> str:
    """Run the app on the cluster at ``ray_address`` (it outlives this process) and return its URL."""
    if not ray.is_initialized():
        ray.init(address=ray_address, log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    app = PolicyServer.options(num_replicas=settings.num_replicas).bind(tracking_uri, model_name, CHAMPION)
    serve.run(app, name=settings.app_name, route_prefix=settings.route_prefix, blocking=False)
    url = base_url(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the policy endpoint at {url} did not become healthy within {timeout_s:.0f}s")
