"""The DAG: ingest -> features -> split -> tune -> train -> evaluate -> register -> deploy."""

from pathlib import Path

from kfp import compiler, dsl

from pipelines.components import (
    deploy_op,
    evaluate_op,
    features_op,
    ingest_op,
    register_op,
    split_op,
    train_op,
    tune_op,
)

PIPELINE_NAME = "rsc-train-evaluate-serve"


@dsl.pipeline(name=PIPELINE_NAME, description="Bars to a served RL trading policy.")
def rsc_pipeline(settings_json: str) -> str:
    """Wire the steps; ``settings_json`` is the run's fully resolved Settings as JSON."""
    ingest = ingest_op(settings_json=settings_json).set_display_name("ingest")
    features = features_op(settings_json=settings_json, bars=ingest.outputs["bars"]).set_display_name(
        "features"
    )
    split = split_op(settings_json=settings_json, features=features.outputs["features"]).set_display_name(
        "split"
    )
    tune = tune_op(
        settings_json=settings_json, split=split.outputs["split"], scaler=split.outputs["scaler"]
    ).set_display_name("tune")
    train = train_op(
        settings_json=settings_json,
        split=split.outputs["split"],
        scaler=split.outputs["scaler"],
        best_params=tune.outputs["best_params"],
    ).set_display_name("train")
    evaluate = evaluate_op(
        settings_json=settings_json,
        split=split.outputs["split"],
        scaler=split.outputs["scaler"],
        model=train.outputs["model"],
    ).set_display_name("evaluate")
    register = register_op(
        settings_json=settings_json,
        split=split.outputs["split"],
        model=train.outputs["model"],
        metrics=evaluate.outputs["metrics"],
        report=evaluate.outputs["report"],
    ).set_display_name("register")
    deploy = deploy_op(settings_json=settings_json, model_name=register.output).set_display_name("deploy")
    return deploy.output


def compile_pipeline(path: str | Path) -> Path:
    """Write the pipeline YAML that a Kubeflow Pipelines server (or ``kfp.Client``) accepts."""
    compiler.Compiler().compile(rsc_pipeline, str(path))
    return Path(path)
