"""Executions of a named run: their own roots, the latest addressed by the name, older roots as they were."""

from __future__ import annotations

from rsc.launch.runs import latest_execution, start_execution
from rsc.storage import Storage, join
from tests.conftest import smoke_settings


def test_two_executions_of_one_name_never_share_a_root(tmp_path):
    cfg = smoke_settings(tmp_path)
    first, second = start_execution(cfg), start_execution(cfg)
    assert first.run.id != second.run.id
    assert first.run_root == f"file://{tmp_path}/smoke/{first.run.id}"
    assert first.run_root != second.run_root
    assert first.run.label == f"smoke-{first.run.id}"  # MLflow run names and RayJob names carry the id
    assert latest_execution(cfg).run_root == second.run_root  # the name addresses the latest


def test_a_pipeline_job_id_becomes_the_execution_id_and_a_set_id_is_kept(tmp_path):
    cfg = smoke_settings(tmp_path)
    assert start_execution(cfg, "0d6b2f3c-job").run.id == "0d6b2f3c-job"
    assert start_execution(smoke_settings(tmp_path, "run.id=chosen"), "0d6b2f3c-job").run.id == "chosen"


def test_a_run_root_from_before_ids_is_addressed_as_it_was(tmp_path):
    cfg = smoke_settings(tmp_path)
    Storage().write_json(join(cfg.run_root, "evaluation", "metrics.json"), {"verdict": "old"})
    legacy = latest_execution(cfg)
    assert legacy.run.id is None and legacy.run_root == f"file://{tmp_path}/smoke"
    assert Storage().read_json(join(legacy.run_root, "evaluation", "metrics.json")) == {"verdict": "old"}


def test_deploy_says_what_the_endpoint_serves_for_this_run():
    """Blocker 9: a run whose model the gate rejects ends green and says so, not as its deployment."""
    from rsc.launch.deploy import outcome

    assert outcome("rsc-policy", 3, 3) == "serving rsc-policy v3 (@champion)"
    assert outcome("rsc-policy", 2, 3) == "kept champion v2; this run's v3 was not promoted"
    assert (
        outcome("rsc-policy", None, 1)
        == "no champion yet: rsc-policy answers 503 until a version is promoted"
    )
