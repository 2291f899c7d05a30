"""MLflow runs, registered model versions and aliases, through a few domain-named functions."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from rsc.core.schema import CHECKPOINT_DIR, OHLCV_COLUMNS
from rsc.registry.policy import Policy
from rsc.registry.pyfunc import POLICY_ARTIFACT, PolicyModel, decide_on_bars

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "policy"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]


def configure(tracking_uri: str, experiment: str, artifact_root: str) -> str:
    """Point MLflow at the tracking store; the experiment keeps its artifacts under ``artifact_root``."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found
        else mlflow.create_experiment(experiment, artifact_location=artifact_root)
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _flatten(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(f"{name}/", value))
        else:
            out[name] = value
    return out


def log_policy(
    policy_dir: Path,
    input_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Path],
    run_name: str,
) -> str:
    """One MLflow run holding the policy as a pyfunc model plus its evidence; returns the model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        serving_dir = Path(tmp) / "policy"
        shutil.copytree(policy_dir, serving_dir, ignore=shutil.ignore_patterns(CHECKPOINT_DIR))
        example = input_example[list(OHLCV_COLUMNS)].reset_index(drop=True)
        output = decide_on_bars(Policy.load(serving_dir), example, 0.0)
        signature = infer_signature(example, output, params={"position": 0.0})
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(_flatten("", params))
            mlflow.log_metrics({k.replace(" ", "_"): float(v) for k, v in _flatten("", metrics).items()})
            mlflow.set_tags(dict(tags))
            for path in artifacts.values():
                mlflow.log_artifact(str(path))
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=PolicyModel(),
                artifacts={POLICY_ARTIFACT: str(serving_dir)},
                signature=signature,
                input_example=example,
            )
            log.info("registry: run %s logged model %s", run.info.run_id, info.model_uri)
            return info.model_uri


def register_policy(model_uri: str, name: str) -> int:
    """A new version of registered model ``name``; it becomes the ``challenger``."""
    version = int(mlflow.register_model(model_uri, name).version)
    set_alias(name, CHALLENGER, version)
    return version


def set_alias(name: str, alias: str, version: int) -> None:
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def resolve_alias(name: str, alias: str) -> int | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def model_version(name: str, version: int) -> ModelVersion:
    client = MlflowClient()
    found = client.get_model_version(name, str(version))
    run = client.get_run(found.run_id)
    return ModelVersion(name, version, found.run_id, tuple(found.aliases), dict(run.data.metrics))


def list_versions(name: str) -> list[ModelVersion]:
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{name}'")
    return sorted((model_version(name, int(v.version)) for v in versions), key=lambda v: v.version)


def model_uri(name: str, alias: str = CHAMPION) -> str:
    return f"models:/{name}@{alias}"


def load_policy(tracking_uri: str, name: str, alias: str = CHAMPION) -> tuple[int, Policy]:
    """The version behind ``alias`` and its policy, loaded through MLflow's pyfunc flavour."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    version = resolve_alias(name, alias)
    if version is None:
        raise LookupError(f"registered model {name!r} has no @{alias} version")
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return version, loaded.unwrap_python_model().policy


def log_sweep(
    run_name: str,
    params: Mapping[str, Any],
    trials: pd.DataFrame,
    best_params: Mapping[str, Any],
    metric: str,
    best_metric: float,
) -> str:
    """One parent run for a hyperparameter sweep with a nested child run per trial; returns its id."""
    with mlflow.start_run(run_name=run_name) as parent:
        mlflow.set_tag("rsc.kind", "sweep")
        mlflow.log_params(_flatten("", params))
        mlflow.log_params(_flatten("best/", best_params))
        mlflow.log_metric(f"best/{metric}", float(best_metric))
        mlflow.log_metric("trials", float(len(trials)))
        for trial in trials.to_dict(orient="records"):
            with mlflow.start_run(run_name=f"trial-{trial['trial_id']}", nested=True):
                mlflow.set_tag("rsc.kind", "trial")
                mlflow.log_params(
                    {k: v for k, v in trial.items() if k.startswith("config/") or k == "trial_id"}
                )
                numbers = {
                    k: float(v)
                    for k, v in trial.items()
                    if not k.startswith("config/") and isinstance(v, int | float) and v == v
                }
                mlflow.log_metrics(numbers)
        return parent.info.run_id
