"""`rsc tune`: a real Ray Tune sweep (OptunaSearch + ASHA) on the smoke config, its results table, its
MLflow parent and child runs, and `Tuner.restore` of a sweep whose driver was killed."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import CONFIGS

pytestmark = pytest.mark.slow


def tune_command(cfg, ray_address: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rsc",
        "tune",
        str(CONFIGS / "base.yaml"),
        str(CONFIGS / "smoke.yaml"),
        f"storage.root={cfg.storage.root}",
        f"ray.address={ray_address}",
        "tune.num_samples=4",
        "tune.iterations=2",
        "tune.selection.walk_forward=false",  # the sweep alone: selection has its own tests
        *extra,
    ]


def finished_trials(experiment: Path) -> int:
    """Trials whose result.json holds their last (2nd) iteration."""
    count = 0
    for results in experiment.glob("trial_*/result.json"):
        rows = []
        for line in results.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the line Tune is writing right now
                continue
        count += any(row.get("training_iteration") == 2 for row in rows)
    return count


def test_interrupted_sweep_restores_and_logs_every_trial(smoke_split, ray_head):
    cfg, _ = smoke_split
    root = Path(cfg.storage.root.removeprefix("file://"))
    experiment = root / cfg.run.name / "tune" / "sweep"
    process = subprocess.Popen(
        tune_command(cfg, ray_head.address), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and finished_trials(experiment) < 1:
        time.sleep(0.5)
    assert process.poll() is None, "the sweep ended before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = {p.parent.name for p in experiment.glob("trial_*/result.json")}
    assert done_before and not (root / cfg.run.name / "tune" / "trials.parquet").exists()

    resumed = subprocess.run(
        [*tune_command(cfg, ray_head.address), "--resume"], capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = pd.read_parquet(io.BytesIO((root / cfg.run.name / "tune" / "trials.parquet").read_bytes()))
    assert len(trials) == 4
    assert {f"trial_{t}" for t in trials["trial_id"]} >= done_before  # the interrupted sweep's trials kept
    assert trials["config/lr"].between(1e-4, 1e-3).all()
    tune_dir = root / cfg.run.name / "tune"
    returns = pd.read_parquet(io.BytesIO((tune_dir / "trial_returns.parquet").read_bytes()))
    assert list(returns.columns) == list(trials["trial_id"]) and len(returns) > 100
    best = json.loads((root / cfg.run.name / "tune" / "best_params.json").read_text())
    assert best["best_metric"] == pytest.approx(trials["best/eval/sharpe"].max())

    mlflow.set_tracking_uri(cfg.tracking_uri)
    client = MlflowClient()
    experiment_id = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
    parents = client.search_runs([experiment_id], "tags.`rsc.kind` = 'sweep'")
    assert len(parents) == 1
    children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert len(children) == 4
    assert {c.data.params["trial_id"] for c in children} == set(trials["trial_id"])


def test_sweep_state_lives_in_the_object_store_with_an_s3_root(tmp_path, s3_endpoint, ray_session):
    """Blocker 3: with an s3:// root the sweep kept its storage on the head's disk (~/ray_results), which
    Ray refuses on a multi-node cluster; it now goes to the run root through the storage's own S3 client."""
    import boto3

    from rsc.stages import features, ingest, split, tune
    from tests.conftest import smoke_settings

    cfg = smoke_settings(
        tmp_path,
        "storage.root=s3://rsc-test/tune-on-s3",
        f"storage.s3_endpoint_url={s3_endpoint}",
        "storage.s3_region=us-east-1",
        f"registry.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        f"ray.address={ray_session.address}",
        "tune.num_samples=1",
        "tune.iterations=1",
        "tune.selection.walk_forward=false",
    )
    bars = ingest.run(cfg)
    data = split.run(cfg, features.run(cfg, bars.bars_uri).features_uri)
    result = tune.run(cfg, data.split_uri, data.scaler_uri)
    assert result.trials == 1
    bucket = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    keys = [
        o["Key"]
        for o in bucket.list_objects_v2(Bucket="rsc-test", Prefix="tune-on-s3/smoke/tune/sweep/")["Contents"]
    ]
    assert any(key.rsplit("/", 1)[-1].startswith("experiment_state") for key in keys), keys
    assert any("/checkpoint_" in key for key in keys), keys  # written by the trial's worker process
    assert not (Path.home() / "ray_results" / "smoke").exists()
    again = tune.run(cfg, data.split_uri, data.scaler_uri, resume=True)  # Tuner.restore from S3
    assert again.best_params == result.best_params
