"""The pipeline compiles importing only kfp, matches its golden YAML, and its train and tune steps
launch RayJobs (with GPU workers when the ``gpus`` parameter is set)."""

import json
import subprocess
import sys

import pytest
import yaml
from kfp import components, dsl, local

from pipelines.components import features_op, ingest_op, settings_op, split_op, tune_op
from rsc.launch.entry import parameter_overrides, resolve_settings
from tests.conftest import PROJECT, smoke_settings

GOLDEN = PROJECT / "tests" / "golden" / "pipeline.yaml"
STEPS = ["settings", "ingest", "features", "split", "tune", "train", "evaluate", "register", "deploy"]


def compile_in_subprocess(path) -> list[str]:
    """Compile in a fresh interpreter; return the heavy modules that compiling imported."""
    code = (
        "import sys; from pipelines.pipeline import compile_pipeline; "
        f"compile_pipeline({str(path)!r}); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'ray', 'torch', 'mlflow', 'rsc'}); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip())


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("compiled") / "p.yaml"
    heavy = compile_in_subprocess(path)
    return path, heavy, next(yaml.safe_load_all(path.read_text()))  # 2nd document: platform config


def test_compile_imports_only_kfp(compiled):
    _, heavy, spec = compiled
    assert heavy == []
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(f"{step}-op" for step in STEPS)
    assert tasks["train-op"]["dependentTasks"] == ["settings-op", "split-op", "tune-op"]
    assert all(tasks[f"{step}-op"]["taskInfo"]["name"] == step for step in STEPS)


def test_compiled_pipeline_matches_golden_file(compiled):
    path, _, _ = compiled
    assert path.read_text() == GOLDEN.read_text(), (
        "the compiled pipeline differs from tests/golden/pipeline.yaml; if the change is intended, "
        "regenerate it with `make golden` and review the diff"
    )


def test_parameters_caching_retries_and_resources(compiled):
    _, _, spec = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert {"settings_json", "symbols", "start", "end", "algorithm_config", "num_samples", "gpus"} <= set(
        parameters
    )
    gpus = parameters["gpus"]
    assert (gpus["defaultValue"], gpus["parameterType"]) == (-1, "NUMBER_INTEGER")
    assert "cluster.gpus" in gpus["description"]  # the docstring documents each parameter in the UI
    tasks = spec["root"]["dag"]["tasks"]
    cached = {
        name.removesuffix("-op") for name, task in tasks.items() if task["cachingOptions"].get("enableCache")
    }
    assert cached == {"settings", "ingest", "features", "split", "evaluate"}
    retried = {name.removesuffix("-op") for name, task in tasks.items() if "retryPolicy" in task}
    assert retried == {"ingest", "register", "deploy"}
    executors = spec["deploymentSpec"]["executors"]
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        assert resources["cpuRequest"] > 0 and resources["memoryLimit"] > 0, name
        # Blocker 9: the image is a run parameter (it was read from RSC_IMAGE when compiling).
        assert executor["container"]["image"] == "{{$.inputs.parameters['pipelinechannel--image']}}", name
        assert {"name": "RAY_AUTH_MODE", "value": "token"} in executor["container"]["env"], name
    assert parameters["image"]["defaultValue"] == "ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0"
    for step in ("train", "tune"):
        assert (
            executors[f"exec-{step}-op"]["container"]["resources"]["accelerator"]["resourceType"]
            == "nvidia.com/gpu"
        )


def test_kubernetes_platform_config(compiled, tmp_path):
    path, _, _ = compiled
    documents = list(yaml.safe_load_all(path.read_text()))
    platform = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert len(platform) == len(STEPS)
    for executor in platform.values():
        storage, ray_token = executor["secretAsEnv"]
        assert storage["secretNameParameter"] == {"componentInputParameter": "storage_secret"}
        assert {k["envVar"] for k in storage["keyToEnv"]} == {
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"
        }  # fmt: skip
        assert ray_token["secretNameParameter"] == {"componentInputParameter": "ray_token_secret"}
        assert ray_token["keyToEnv"] == [{"secretKey": "auth_token", "envVar": "RAY_AUTH_TOKEN"}]
        assert storage["optional"] is True and ray_token["optional"] is True
        assert executor["podMetadata"]["labels"] == {"app.kubernetes.io/part-of": "rsc"}  # NetworkPolicy peer
    for step in ("train", "tune"):
        executor = platform[f"exec-{step}-op"]
        assert executor["nodeSelector"]["nodeSelectorJson"] == {
            "componentInputParameter": "pod_node_selector"
        }
        assert executor["tolerations"][0]["tolerationJson"] == {"componentInputParameter": "pod_tolerations"}


def test_compiled_yaml_loads_back(tmp_path):
    from rsc.cli.main import main

    assert main(["compile", "-o", str(tmp_path / "pipeline.yaml")]) == 0
    loaded = components.load_component_from_file(str(tmp_path / "pipeline.yaml"))
    assert loaded.name == "rsc-train-evaluate-serve"
    assert "settings_json" in loaded.component_spec.inputs


def test_parameters_become_settings_overrides():
    assert parameter_overrides({"symbols": "SPX, GOOG", "gpus": 2, "num_samples": 0, "start": ""}) == [
        "data.symbols=[SPX,GOOG]",
        "cluster.gpus=2",
    ]
    cluster = resolve_settings("", {"gpus": 4, "end": "2018-06-30"})  # the image's cluster configuration
    assert cluster.cluster.launcher == "kuberay"
    assert cluster.cluster.gpus == 4 and cluster.cluster.gpu_workers == 4
    assert cluster.cluster.learner_overrides == (
        "resources.num_learners=4",
        "resources.num_gpus_per_learner=1",
    )
    assert str(cluster.data.end) == "2018-06-30"
    with pytest.raises(ValueError, match="unknown pipeline parameter"):
        parameter_overrides({"gpu": 1})


def test_gpu_learners_reach_the_rllib_config():
    """cluster.gpus turns into RLlib learners with one GPU each (what the GPU workers are for)."""
    from rsc.rl.algorithm import build_algorithm_config
    from rsc.rl.spec import load_algorithm_spec, resolve_spec_path

    cfg = smoke_settings(PROJECT, "cluster.gpus=2")
    spec = load_algorithm_spec(resolve_spec_path(cfg.train.algorithm_config), cfg.cluster.learner_overrides)
    config = build_algorithm_config(spec, {}, seed=0)
    assert (config.num_learners, config.num_gpus_per_learner) == (2, 1)


@dsl.pipeline(name="up-to-tune")
def up_to_tune(settings_json: str, gpus: int, launcher: str) -> str:
    """The first five steps of the DAG, wired as in pipelines/pipeline.py."""
    settings = settings_op(settings_json=settings_json, gpus=gpus, launcher=launcher)
    ingest = ingest_op(settings_json=settings.output)
    features = features_op(settings_json=settings.output, bars=ingest.outputs["bars"])
    split = split_op(settings_json=settings.output, features=features.outputs["features"])
    tune_op(settings_json=settings.output, split=split.outputs["split"], scaler=split.outputs["scaler"])
    return settings.output


def test_tune_step_with_gpus_parameter_creates_a_gpu_rayjob(tmp_path, monkeypatch):
    """The real components in KFP's local runner, the tune step against the stand-in API server."""
    from tests.k8s_schemas import kuberay_errors, require_kuberay_schemas
    from tests.kube_standin import EntrypointOperator, StandInApiServer, write_kubeconfig

    require_kuberay_schemas()
    operator = EntrypointOperator()
    with StandInApiServer(validate=kuberay_errors, on_create=operator) as server:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", server, "kfp-runs")))
        cfg = smoke_settings(
            tmp_path / "store", "tune.enabled=false", f"cluster.workdir={PROJECT}", "cluster.watch_s=2"
        )
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(tmp_path / "kfp"),
            raise_on_error=True,
        )
        resolved = json.loads(
            up_to_tune(settings_json=cfg.model_dump_json(), gpus=2, launcher="kuberay").output
        )
    assert resolved["cluster"] | {"launcher": "kuberay", "gpus": 2} == resolved["cluster"]
    (job,) = server.created
    assert job["metadata"]["namespace"] == "kfp-runs" and job["metadata"]["labels"]["rsc.io/stage"] == "tune"
    groups = {g["groupName"]: g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    assert groups["gpu"]["replicas"] == 2
    assert groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--input" in job["spec"]["entrypoint"] and "split=file://" in job["spec"]["entrypoint"]
    assert operator.outputs and '"trials": 0' in operator.outputs[0]
