"""The ray-jobs launcher against a real `ray start --head` with its dashboard on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from rsc.cluster.ray_jobs import RayJobsFailed
from rsc.launch.stages import launch_stage
from rsc.storage import Storage, join
from tests.conftest import smoke_settings

pytestmark = pytest.mark.slow


def jobs_settings(cfg, head, *extra: str):
    return smoke_settings(
        Storage().local_path(cfg.storage.root),
        "cluster.launcher=ray-jobs",
        f"cluster.jobs_address={head.dashboard_url}",
        f"cluster.jobs_python={sys.executable}",
        "train.iterations=1",
        *extra,
    )


def listed_jobs(head) -> dict[str, str]:
    """submission id -> status of submitted jobs, from the dashboard's REST API (token auth stays on).

    Drivers that connected with ``ray.init`` are listed too, without a submission id; they are skipped.
    """
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    response = requests.get(
        f"{head.dashboard_url}/api/jobs/", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    response.raise_for_status()
    return {job["submission_id"]: job["status"] for job in response.json() if job.get("submission_id")}


def test_train_runs_as_a_ray_job_and_is_listed_by_the_dashboard(smoke_split, ray_head):
    cfg, split = smoke_split
    cfg = jobs_settings(cfg, ray_head)
    best_params = join(cfg.run_root, "tune", "best_params.json")
    Storage().write_json(best_params, {"best_params": {}})
    result = launch_stage(
        "train", cfg, {"split": split.split_uri, "scaler": split.scaler_uri, "best_params": best_params}
    )
    assert result["best_iteration"] == 1
    assert Storage().exists(join(result["model_uri"], "network.pt"))
    jobs = listed_jobs(ray_head)
    ours = {sid: status for sid, status in jobs.items() if sid.startswith(f"rsc-{cfg.run.name}-train-")}
    assert list(ours.values()) == ["SUCCEEDED"]


def test_a_failing_job_fails_the_step_with_its_message(smoke_split, ray_head):
    cfg, split = smoke_split
    cfg = jobs_settings(cfg, ray_head)
    best_params = join(cfg.run_root, "tune", "best_params.json")
    Storage().write_json(best_params, {"best_params": {}})
    with pytest.raises(
        RayJobsFailed, match=r"ended FAILED: FileNotFoundError: no dataset at file:///nowhere"
    ):
        launch_stage(
            "train", cfg, {"split": "file:///nowhere", "scaler": split.scaler_uri, "best_params": best_params}
        )
    assert "FAILED" in listed_jobs(ray_head).values()
