"""The chart's MLflow server, started with exactly the arguments `helm template` renders, with its
artifact store on the loopback S3 server: clients reach it by its Service name and write artifacts
through its proxy, with no object-store access of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from rehearsal.chart import mlflow_server, render
from rsc.cluster.local import free_port
from rsc.registry.tracking import ExperimentNeedsMigration, configure, migrate_experiment
from tests.helm_tools import helm_binary

STORE_KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # what the storage Secret holds
CLIENT_HIDDEN = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")


def start_server(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / command[0]), *command[1:]]  # `mlflow` of this environment
    process = subprocess.Popen(
        command, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **env},
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return process


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(log.read_text()[-3000:])


@pytest.fixture(scope="module")
def chart_mlflow(tmp_path_factory, s3_endpoint):
    """The server as its pod runs it: the chart's command line with $(VAR) expanded, the Secret's keys."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    documents = render(
        "--set", f"mlflow.port={port}",
        "--set", "mlflow.artifactRoot=s3://rsc-test/mlflow",
        "--set", f"mlflow.backendStore.uri=sqlite:///{tmp}/mlflow.db",
        "--set", f"storage.s3EndpointUrl={s3_endpoint}",
        helm=Path(helm_binary()),
    )  # fmt: skip
    command, env = mlflow_server(documents, STORE_KEYS)
    process = start_server(command, env, tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, tmp / "server.log")
    yield url, port, command, env, tmp
    process.terminate()
    process.wait(timeout=30)


def search(url: str, host: str) -> requests.Response:
    return requests.get(
        f"{url}/api/2.0/mlflow/experiments/search",
        params={"max_results": 5},
        headers={"Host": host},
        timeout=10,
    )


def test_clients_reach_the_server_by_its_service_name(chart_mlflow):
    url, port, *_ = chart_mlflow
    for host in (f"rsc-mlflow:{port}", f"rsc-mlflow.rsc.svc.cluster.local:{port}", f"127.0.0.1:{port}"):
        assert search(url, host).status_code == 200, host
    assert search(url, f"evil.example.com:{port}").status_code == 403


def test_without_the_allowed_hosts_the_service_name_is_refused(chart_mlflow):
    """Today's behaviour before the chart named its hosts: /health is fine, every API call 403."""
    _, _, command, env, tmp = chart_mlflow
    port = free_port()
    bare = [part.replace(f"--port={command_port(command)}", f"--port={port}") for part in command]
    bare = [part for part in bare if not part.startswith("--allowed-hosts=")]
    process = start_server(bare, env, tmp / "bare.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, tmp / "bare.log")
        assert search(url, f"rsc-mlflow:{port}").status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=30)


def command_port(command: list[str]) -> str:
    return next(part.split("=", 1)[1] for part in command if part.startswith("--port="))


@pytest.fixture
def client_without_store_access(monkeypatch):
    """A pipeline step as the chart sees it: MLflow's URL, and no S3 endpoint or keys."""
    for key in CLIENT_HIDDEN:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("client_without_store_access")
def test_experiments_keep_artifacts_behind_the_proxy(chart_mlflow, s3_endpoint):
    """Blocker 2: an s3:// experiment location made clients write to the store themselves."""
    url, *_ = chart_mlflow
    experiment_id = configure(url, "proxied", "s3://rsc-test/ignored-with-a-server")
    assert MlflowClient().get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    with mlflow.start_run() as run:
        mlflow.log_text("evidence", "report/summary.txt")
    bucket = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **lower(STORE_KEYS))
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="rsc-test", Prefix="mlflow/")["Contents"]]
    assert f"mlflow/{experiment_id}/{run.info.run_id}/artifacts/report/summary.txt" in keys


def lower(keys: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": keys["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.mark.usefixtures("client_without_store_access")
def test_an_experiment_of_an_earlier_version_is_migrated_by_a_command(chart_mlflow):
    url, *_ = chart_mlflow
    old = MlflowClient(url).create_experiment("legacy", artifact_location="s3://rsc-test/direct")
    with pytest.raises(ExperimentNeedsMigration, match="rsc registry migrate"):
        configure(url, "legacy", "s3://rsc-test/direct")
    assert migrate_experiment(url, "legacy") == f"legacy-direct-{old}"
    assert migrate_experiment(url, "legacy") is None  # nothing left to migrate
    new = configure(url, "legacy", "s3://rsc-test/direct")
    assert new != old and MlflowClient(url).get_experiment(new).artifact_location.startswith(
        "mlflow-artifacts:"
    )
    assert (
        MlflowClient(url).get_experiment(old).name == f"legacy-direct-{old}"
    )  # its runs stay where they were
