"""One thin KFP component per DAG step: parse settings, call one ``rsc.stages`` function, pass URIs on.

Artifacts carry the storage URI of what the stage wrote in ``metadata["uri"]`` (and small facts such
as row counts and hashes); the data itself never travels through KFP. Imports sit inside each
function because KFP ships the function's source to the step's container. The first step resolves
the run's settings (the pipeline parameters applied as overrides) and every other step reads them.
Train and tune go through ``launch_stage``: in process, or as a KubeRay RayJob (``cluster.launcher``).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

# The project image (see Dockerfile); every component runs in it, and it already holds kfp, so steps
# install nothing at start (install_kfp_package=False) and need no network to PyPI. A run picks another
# with the pipeline's `image` parameter (`rsc submit --image`).
IMAGE = "ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def settings_op(
    settings_json: str,
    symbols: str = "",
    start: str = "",
    end: str = "",
    algorithm_config: str = "",
    num_samples: int = 0,
    gpus: int = -1,
    launcher: str = "",
    run_id: str = "",
) -> str:
    from rsc.launch.entry import resolve_settings
    from rsc.launch.runs import start_execution

    parameters = {
        "symbols": symbols,
        "start": start,
        "end": end,
        "algorithm_config": algorithm_config,
        "num_samples": num_samples,
        "gpus": gpus,
        "launcher": launcher,
    }
    # The execution id: the one the settings carry (`rsc run` sets it), else the pipeline job's id, which
    # no cached step can reuse; every artifact of the run goes under <root>/<name>/<id>/.
    return start_execution(resolve_settings(settings_json, parameters), run_id or None).model_dump_json()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_op(settings_json: str, bars: Output[Dataset]):
    from rsc.launch.entry import step
    from rsc.stages import ingest

    with step("ingest", settings_json) as cfg:
        result = ingest.run(cfg)
    bars.metadata.update({"uri": result.bars_uri, "rows": result.rows, "sha256": result.sha256})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features_op(settings_json: str, bars: Input[Dataset], features: Output[Dataset]):
    from rsc.launch.entry import step
    from rsc.stages import features as stage

    with step("features", settings_json) as cfg:
        result = stage.run(cfg, bars.metadata["uri"])
    features.metadata.update(
        {"uri": result.features_uri, "rows": result.rows, "sha256": result.sha256, "columns": result.columns}
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def split_op(settings_json: str, features: Input[Dataset], split: Output[Dataset], scaler: Output[Artifact]):
    from rsc.launch.entry import step
    from rsc.stages import split as stage

    with step("split", settings_json) as cfg:
        result = stage.run(cfg, features.metadata["uri"])
    split.metadata.update({"uri": result.split_uri, "rows": result.rows, "folds_uri": result.folds_uri})
    scaler.metadata.update({"uri": result.scaler_uri})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def tune_op(
    settings_json: str, split: Input[Dataset], scaler: Input[Artifact], best_params: Output[Artifact]
):
    from rsc.launch.entry import step
    from rsc.launch.stages import launch_stage

    inputs = {"split": split.metadata["uri"], "scaler": scaler.metadata["uri"]}
    with step("tune", settings_json) as cfg:
        result = launch_stage("tune", cfg, inputs)
    best_params.metadata.update(
        {
            "uri": result["best_params_uri"],
            "params": result["best_params"],
            # NaN (no search ran) is not valid in KFP's metadata protobuf; None is.
            "best_metric": result["best_metric"] if result["best_metric"] == result["best_metric"] else None,
            "trials_uri": result["trials_uri"],
        }
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_op(
    settings_json: str,
    split: Input[Dataset],
    scaler: Input[Artifact],
    best_params: Input[Artifact],
    model: Output[Model],
):
    from rsc.launch.entry import step
    from rsc.launch.stages import launch_stage

    inputs = {
        "split": split.metadata["uri"],
        "scaler": scaler.metadata["uri"],
        "best_params": best_params.metadata["uri"],
    }
    with step("train", settings_json) as cfg:
        result = launch_stage("train", cfg, inputs)
    model.metadata.update(
        {
            "uri": result["model_uri"],
            "checkpoint_uri": result["checkpoint_uri"],
            "best_iteration": result["best_iteration"],
            **result["metrics"],
        }
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_op(
    settings_json: str,
    split: Input[Dataset],
    scaler: Input[Artifact],
    model: Input[Model],
    metrics: Output[Metrics],
    report: Output[Artifact],
):
    from rsc.launch.entry import step
    from rsc.stages import evaluate

    with step("evaluate", settings_json) as cfg:
        result = evaluate.run(cfg, split.metadata["uri"], scaler.metadata["uri"], model.metadata["uri"])
    for strategy, values in result.metrics.items():
        for name, value in values.items():
            metrics.log_metric(f"{strategy}/{name}", value)
    metrics.metadata["uri"] = result.metrics_uri
    report.metadata["uri"] = result.report_uri


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_op(
    settings_json: str,
    split: Input[Dataset],
    model: Input[Model],
    metrics: Input[Metrics],
    report: Input[Artifact],
) -> NamedTuple("Registered", [("model_name", str), ("version", int)]):
    from collections import namedtuple

    from rsc.launch.entry import step
    from rsc.stages import register

    with step("register", settings_json) as cfg:
        result = register.run(
            cfg,
            split.metadata["uri"],
            model.metadata["uri"],
            metrics.metadata["uri"],
            report.metadata["uri"],
        )
    return namedtuple("Registered", ["model_name", "version"])(result.model_name, result.version)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_op(settings_json: str, model_name: str, version: int) -> str:
    import json

    from rsc.launch.entry import step
    from rsc.launch.stages import launch_stage

    with step("deploy", settings_json) as cfg:
        result = launch_stage("deploy", cfg, {"model_name": model_name, "version": str(version)})
    return json.dumps(result)
