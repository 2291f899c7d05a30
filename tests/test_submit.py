"""``rsc submit`` through the real ``kfp.Client`` against a stand-in Kubeflow Pipelines server.

The stand-in (tests/kfp_standin.py) is a real HTTP server on 127.0.0.1 speaking the part of the KFP
v2beta1 REST API the client uses. It is not a Kubeflow Pipelines server: it stores what it is sent and
runs nothing.
"""

from __future__ import annotations

import json

import pytest
import yaml

from rsc.cli.main import main
from tests.kfp_standin import StandInKfp


@pytest.fixture
def kfp_server(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/kfp/context.json from the developer
    monkeypatch.delenv("KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", raising=False)
    with StandInKfp() as server:
        yield server


def test_submit_starts_a_run_with_settings_and_parameters(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "token-from-env")
    code = main(
        ["submit", "--host", kfp_server.url, "--experiment", "gpu-sweeps", "gpus=2", "symbols=SPX,GOOG",
         "cluster.cpu_workers=3", "--service-account", "rsc-pipeline"]
    )  # fmt: skip
    assert code == 0
    (run,) = kfp_server.runs
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url == f"{kfp_server.url}/#/runs/details/{run['run_id']}"
    (experiment,) = kfp_server.experiments
    assert experiment["display_name"] == "gpu-sweeps" and run["experiment_id"] == experiment["experiment_id"]
    parameters = run["runtime_config"]["parameters"]
    assert parameters["gpus"] == 2 and parameters["symbols"] == "SPX,GOOG"
    settings = json.loads(parameters["settings_json"])
    assert settings["cluster"]["launcher"] == "kuberay"  # configs/cluster.yaml is the default overlay
    assert settings["cluster"]["cpu_workers"] == 3
    spec = run["pipeline_spec"]
    assert sorted(spec) == ["pipeline_spec", "platform_spec"]  # the kubernetes platform config travels too
    assert spec["pipeline_spec"]["pipelineInfo"]["name"] == "rsc-train-evaluate-serve"
    assert run["service_account"] == "rsc-pipeline"
    assert set(kfp_server.authorizations) == {"Bearer token-from-env"}


def test_submit_image_runs_every_step_and_rayjob_in_it(kfp_server, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "t")
    image = "registry.example.com/team/rsc:0.1.0-ray2.60.0-rc1"
    assert main(["submit", "--host", kfp_server.url, "--image", image]) == 0
    (run,) = kfp_server.runs
    parameters = run["runtime_config"]["parameters"]
    assert parameters["image"] == image
    assert json.loads(parameters["settings_json"])["cluster"]["image"] == image


def test_second_submit_reuses_the_experiment(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    for _ in range(2):
        assert main(["submit", "--host", kfp_server.url, "--experiment", "nightly"]) == 0
    assert len(kfp_server.experiments) == 1 and len(kfp_server.runs) == 2
    assert kfp_server.runs[0]["experiment_id"] == kfp_server.runs[1]["experiment_id"]


def test_token_comes_from_kube_config_without_env(kfp_server, monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "token-from-kubeconfig"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert main(["submit", "--host", kfp_server.url, "--run-name", "from-laptop"]) == 0
    assert set(kfp_server.authorizations) == {"Bearer token-from-kubeconfig"}
    assert kfp_server.runs[0]["display_name"] == "from-laptop"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("gpus=two", "gpus='two': not a int"),
        ("gpu=1", "neither a settings key"),
        ("cluster.gpus=-1", "cluster.gpus"),
    ],
)
def test_bad_arguments_are_one_clear_error(kfp_server, monkeypatch, capsys, argument, message):
    monkeypatch.setenv("KFP_TOKEN", "t")
    assert main(["submit", "--host", kfp_server.url, argument]) == 2
    assert message in capsys.readouterr().err
    assert kfp_server.runs == []


def test_schedule_creates_a_recurring_run_that_ingests_afresh(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    code = main(["submit", "--host", kfp_server.url, "--schedule", "0 22 * * 1-5", "--experiment", "nightly"])
    assert code == 0 and kfp_server.runs == []
    (recurring,) = kfp_server.recurring_runs
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url == f"{kfp_server.url}/#/recurringrun/details/{recurring['recurring_run_id']}"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 22 * * 1-5"  # KFP's seconds-first cron
    assert recurring["mode"] == "ENABLE" and recurring["no_catchup"] is True
    assert int(recurring["max_concurrency"]) == 1
    (experiment,) = kfp_server.experiments
    assert (
        recurring["experiment_id"] == experiment["experiment_id"] and experiment["display_name"] == "nightly"
    )
    assert "settings_json" in recurring["runtime_config"]["parameters"]
    tasks = recurring["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"].values()
    caching = [task.get("cachingOptions", {}).get("enableCache", False) for task in tasks]
    assert caching and not any(caching)  # every scheduled run ingests the data anew


def test_a_bad_cron_is_one_clear_error(kfp_server, monkeypatch, capsys):
    monkeypatch.setenv("KFP_TOKEN", "t")
    assert main(["submit", "--host", kfp_server.url, "--schedule", "every night"]) == 2
    assert "expected a cron expression of 5 fields" in capsys.readouterr().err
    assert kfp_server.recurring_runs == []
