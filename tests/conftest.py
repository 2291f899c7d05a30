"""Shared fixtures: one Ray head for the whole session, settings pointing at a temp storage root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from rsc.cluster.local import LocalHead, free_port, local_head
from rsc.config import Settings, load_settings

PROJECT = Path(__file__).resolve().parents[1]
CONFIGS = PROJECT / "configs"


@pytest.fixture(scope="session")
def ray_head() -> Iterator[LocalHead]:
    """A real ``ray start --head`` on 127.0.0.1 that every Ray-using test (and pipeline step) joins.

    Its workers get S3 keys in their environment, as a cluster's Ray pods get the storage Secret (the
    loopback S3 server takes any); settings never carry them into configs that MLflow logs.
    """
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
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


@pytest.fixture(scope="module")
def smoke_split(tmp_path_factory):
    """The smoke run's data (ingest -> features -> split) under a fresh storage root."""
    from rsc.stages import features, ingest, split

    root = tmp_path_factory.mktemp("split")
    cfg = smoke_settings(root)
    bars = ingest.run(cfg)
    feats = features.run(cfg, bars.bars_uri)
    return cfg, split.run(cfg, feats.features_uri)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with a bucket ``rsc-test`` (any credentials are accepted)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket="rsc-test")
    yield endpoint
    server.stop()
