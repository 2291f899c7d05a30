"""Shared fixtures: one Ray head for the whole session, settings pointing at a temp storage root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rsc.cluster.local import LocalHead, free_port, local_head
from rsc.config import Settings, load_settings

PROJECT = Path(__file__).resolve().parents[1]
CONFIGS = PROJECT / "configs"
SHARED = PROJECT.parent / "shared"


@pytest.fixture(scope="session")
def ray_head() -> Iterator[LocalHead]:
    """A real ``ray start --head`` on 127.0.0.1 that every Ray-using test (and pipeline step) joins."""
    with local_head(num_cpus=2, dashboard_port=free_port()) as head:
        yield head
        import ray

        ray.shutdown()  # a driver whose cluster disappears under it exits the whole process


@pytest.fixture(scope="session")
def ray_session(ray_head: LocalHead) -> LocalHead:
    """This test process connected to the session's head."""
    from rsc.rl.runtime import connect

    connect(ray_head.address)
    return ray_head


def smoke_settings(root: Path, *overrides: str) -> Settings:
    """The smoke configuration with its storage under ``root``."""
    return load_settings(
        [CONFIGS / "base.yaml", CONFIGS / "smoke.yaml"],
        [f"storage.root=file://{root}", "monitor.enabled=false", *overrides],
    )
