"""Connecting this process to Ray: an existing cluster by address, or a local in-process one."""

from __future__ import annotations

import logging

import ray

log = logging.getLogger(__name__)


def connect(address: str | None) -> None:
    """``ray.init`` once; ``address=None`` starts a local instance (no dashboard, quiet logs)."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        log.info("connected to Ray at %s", address)
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        log.info("started a local Ray instance")
