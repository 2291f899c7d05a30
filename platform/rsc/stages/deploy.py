"""deploy: serve the registered ``champion`` with Ray Serve on the run's Ray cluster."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests

from rsc.config import Settings
from rsc.serve.deploy import deploy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployResult:
    url: str
    model_name: str
    model_version: int


def run(cfg: Settings, model_name: str) -> DeployResult:
    if cfg.ray.address is None:
        raise ValueError(
            "deploy needs a running Ray cluster (ray.address): an in-process Ray ends with the step"
        )
    url = deploy(cfg.serve, cfg.ray.address, cfg.tracking_uri, model_name, cfg.monitor)
    info = requests.get(f"{url}/v1/model", timeout=10).json()
    log.info("deploy: %s version %s serving at %s/v1/act", model_name, info["model_version"], url)
    return DeployResult(url, model_name, int(info["model_version"]))
