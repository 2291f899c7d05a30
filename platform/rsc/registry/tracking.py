"""MLflow runs, registered model versions and aliases, through a few domain-named functions."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from rsc.core.schema import CHECKPOINT_DIR, OHLCV_COLUMNS, SYMBOL, TIMESTAMP
from rsc.registry.policy import Policy
from rsc.registry.provenance import MODEL_URI_TAG
from rsc.registry.pyfunc import (
    POLICY_ARTIFACT,
    PolicyModel,
    decide_on_bars,
    decide_weights_on_bars,
    example_params,
    params_of,
)

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "policy"
KIND_TAG = "rsc.kind"  # train | sweep | trial | policy: what a run records
PROXIED_ARTIFACTS = "mlflow-artifacts:"  # locations a tracking server serves through its artifact proxy

# What the pyfunc model needs to act, and nothing else: the numpy feature and observation kernels, the
# Policy class and the pyfunc wrapper. They travel inside the model (``code/rsc``), so that a version
# acts with the code it was registered with, wherever it is loaded.
SERVING_CODE = ("__init__.py", "core", "registry/__init__.py", "registry/policy.py", "registry/pyfunc.py")
SERVING_REQUIREMENTS = ("mlflow", "torch", "numpy", "pandas")


# What a registry call raises when the tracking store refuses it (no such model or version, ...), so
# that callers outside this package can report it without importing mlflow.
REGISTRY_ERRORS: tuple[type[Exception], ...] = (MlflowException,)


class NoVersion(LookupError):
    """No version of the registered model has the alias (yet)."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]  # of the run that logged the model
    tags: dict[str, str] = field(default_factory=dict)  # of the model version (gate decisions)
    run_tags: dict[str, str] = field(default_factory=dict)
    created_ms: int = 0


def use_registry(tracking_uri: str) -> None:
    """Point this process's MLflow client at the tracking store and model registry."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


class ExperimentNeedsMigration(RuntimeError):
    """An experiment made by an earlier version keeps its artifacts outside the server's proxy."""


def has_tracking_server(tracking_uri: str) -> bool:
    """An MLflow server (http/https), as opposed to a store this process opens itself (SQLite)."""
    return tracking_uri.startswith(("http://", "https://"))


def configure(tracking_uri: str, experiment: str, artifact_root: str) -> str:
    """Point MLflow at the tracking store and the run's experiment (created when missing).

    With a tracking server the experiment takes the server's default location, ``mlflow-artifacts:``,
    so artifacts go through the server's proxy and clients need no object-store endpoint or keys of
    their own; ``artifact_root`` is the location for a store opened in process (SQLite beside a file
    storage root). An experiment an earlier version created on a server with a direct ``s3://``
    location is refused with the command that migrates it (its location cannot be changed in place).
    """
    use_registry(tracking_uri)
    server = has_tracking_server(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        experiment_id = mlflow.create_experiment(
            experiment, artifact_location=None if server else artifact_root
        )
    elif server and not found.artifact_location.startswith(PROXIED_ARTIFACTS):
        raise ExperimentNeedsMigration(
            f"experiment {experiment!r} at {tracking_uri} keeps its artifacts at {found.artifact_location}, "
            "outside the tracking server's artifact proxy (it was created by an earlier version): run "
            "`rsc registry migrate` once; registered versions keep serving"
        )
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def migrate_experiment(tracking_uri: str, experiment: str) -> str | None:
    """Rename an experiment whose artifacts bypass the server's proxy to ``<name>-direct-<id>``, so the
    next run creates ``<name>`` on ``mlflow-artifacts:``; its runs and registered versions stay as they
    are. Returns the new name, or None when there is nothing to migrate."""
    use_registry(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None or found.artifact_location.startswith(PROXIED_ARTIFACTS):
        return None
    renamed = f"{experiment}-direct-{found.experiment_id}"
    MlflowClient().rename_experiment(found.experiment_id, renamed)
    log.info("renamed experiment %r (artifacts at %s) to %r", experiment, found.artifact_location, renamed)
    return renamed


def _flatten(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(f"{name}/", value))
        else:
            out[name] = value
    return out


def _serving_code(destination: Path) -> Path:
    """A copy of the modules in :data:`SERVING_CODE` as a package folder ``destination/rsc``."""
    source = Path(__file__).resolve().parents[1]
    package = destination / "rsc"
    for entry in SERVING_CODE:
        target = package / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / entry).is_dir():
            shutil.copytree(source / entry, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / entry, target)
    return package


def _pinned(distributions: Iterable[str]) -> list[str]:
    """``name==version`` of each distribution as installed here (what the model was checked with)."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in distributions]


def log_training(
    run_name: str,
    params: Mapping[str, Any],
    history: Iterable[Mapping[str, Any]],
    tags: Mapping[str, str],
    config: Mapping[str, Any],
    resolved: Mapping[str, Any] | None = None,
) -> str:
    """A train run: its parameters, one step of metrics per iteration, provenance tags, the settings
    (``config.json``) and the resolved training plan (``resolved_config.json``: value and source of each
    key where the settings and the algorithm YAML meet).

    Tags should carry :data:`MODEL_URI_TAG`, so that :func:`find_training_run` finds the run again when
    the policy it wrote is registered. Returns the run id.
    """
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({KIND_TAG: "train", **tags})
        mlflow.log_params(_flatten("", params))
        for row in history:
            numbers = {
                key: float(value)
                for key, value in row.items()
                if key != "iteration" and isinstance(value, int | float) and value == value
            }
            mlflow.log_metrics(numbers, step=int(row["iteration"]))
        mlflow.log_dict(dict(config), "config.json")
        if resolved is not None:
            mlflow.log_dict(dict(resolved), "resolved_config.json")
        return run.info.run_id


def find_training_run(model_uri: str) -> str | None:
    """The newest train run that wrote the policy folder ``model_uri``, or None."""
    if "'" in model_uri:
        return None  # not expressible in a search filter; register then logs a run of its own
    runs = mlflow.search_runs(
        filter_string=f"tags.`{KIND_TAG}` = 'train' and tags.`{MODEL_URI_TAG}` = '{model_uri}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def _new_params(run_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` less those the run already holds (MLflow params are write-once)."""
    logged = MlflowClient().get_run(run_id).data.params
    fresh = {}
    for key, value in _flatten("", params).items():
        if key not in logged:
            fresh[key] = value
        elif logged[key] != str(value):
            log.warning("registry: run %s keeps param %s=%s (not %s)", run_id, key, logged[key], value)
    return fresh


def log_policy(
    policy_dir: Path,
    input_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Path],
    run_name: str,
    run_id: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """The policy as a pyfunc model plus its evidence, in run ``run_id`` (the train run that produced
    it) or, when None, in a new run (with ``config`` as ``config.json``). Returns the model URI and the
    run id.

    The model holds the network, ``policy.json`` (feature specs, fitted scaler, window, positions), the
    code that acts with them and pinned requirements; it loads and acts without Ray or RLlib.
    """
    with tempfile.TemporaryDirectory() as tmp:
        serving_dir = Path(tmp) / "policy"
        shutil.copytree(policy_dir, serving_dir, ignore=shutil.ignore_patterns(CHECKPOINT_DIR))
        code = _serving_code(Path(tmp) / "code")
        policy = Policy.load(serving_dir)
        inference_params = params_of(policy)
        example_values = example_params(policy)
        if policy.portfolio is not None:
            example = input_example[[SYMBOL, TIMESTAMP, *OHLCV_COLUMNS]].reset_index(drop=True)
            output = decide_weights_on_bars(policy, example)
        else:
            example = input_example[list(OHLCV_COLUMNS)].reset_index(drop=True)
            output = decide_on_bars(policy, example, 0.0, symbol=example_values["symbol"])
        signature = infer_signature(example, output, params=inference_params)
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name) as run:
            mlflow.set_tag(KIND_TAG, "train" if run_id else "policy")
            mlflow.log_params(_new_params(run.info.run_id, params))
            mlflow.log_metrics({k.replace(" ", "_"): float(v) for k, v in _flatten("", metrics).items()})
            mlflow.set_tags(dict(tags))
            for path in artifacts.values():
                mlflow.log_artifact(str(path))
            if config is not None and run_id is None:  # a train run holds its config already
                mlflow.log_dict(dict(config), "config.json")
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=PolicyModel(),
                artifacts={POLICY_ARTIFACT: str(serving_dir)},
                code_paths=[str(code)],
                pip_requirements=_pinned(SERVING_REQUIREMENTS),
                signature=signature,
                input_example=(example, example_values),
            )
            log.info("registry: run %s logged model %s", run.info.run_id, info.model_uri)
            return info.model_uri, run.info.run_id


def register_policy(model_uri: str, name: str) -> int:
    """A new version of registered model ``name``; it becomes the ``challenger``."""
    version = int(mlflow.register_model(model_uri, name).version)
    set_alias(name, CHALLENGER, version)
    return version


def tag_version(name: str, version: int, tags: Mapping[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


def set_alias(name: str, alias: str, version: int) -> None:
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def resolve_alias(name: str, alias: str) -> int | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _described(found: MlflowModelVersion, aliases: tuple[str, ...], run: Run) -> ModelVersion:
    return ModelVersion(
        found.name,
        int(found.version),
        found.run_id,
        aliases,
        dict(run.data.metrics),
        dict(found.tags),
        dict(run.data.tags),
        int(found.creation_timestamp or 0),
    )


def model_version(name: str, version: int) -> ModelVersion:
    client = MlflowClient()
    found = client.get_model_version(name, str(version))
    return _described(found, tuple(sorted(found.aliases)), client.get_run(found.run_id))


def list_versions(name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first (none when the model does not exist): one registry query
    for the versions, one for the aliases (search results do not carry them), one run read a version."""
    client = MlflowClient()
    found = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    if not found:
        return []
    aliases: dict[int, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(int(version), []).append(alias)
    return [
        _described(v, tuple(sorted(aliases.get(int(v.version), []))), client.get_run(v.run_id)) for v in found
    ]


def data_hash_references(tracking_uri: str) -> dict[str, list[str]]:
    """Data hash -> ``model NAME vN`` of every registered version whose training run recorded it (its
    ``rsc.data.*_sha256`` tags); what ``rsc data gc`` must keep."""
    use_registry(tracking_uri)
    client = MlflowClient()
    found: dict[str, list[str]] = {}
    token = None
    while True:  # every page of versions, not only the first
        page = client.search_model_versions(max_results=1_000, page_token=token)
        for version in page:
            try:
                tags = client.get_run(version.run_id).data.tags
            except MlflowException:  # a version whose run was deleted records nothing
                continue
            for key, value in tags.items():
                if key.startswith("rsc.data.") and key.endswith("_sha256"):
                    found.setdefault(value, []).append(f"model {version.name} v{version.version}")
        token = page.token
        if not token:
            return found


def load_version(name: str, version: int) -> Policy:
    """Version ``version``'s policy, loaded through MLflow's pyfunc flavour (the code it carries)."""
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return loaded.unwrap_python_model().policy


def load_policy(tracking_uri: str, name: str, alias: str = CHAMPION) -> tuple[int, Policy]:
    """The version behind ``alias`` and its policy."""
    use_registry(tracking_uri)
    version = resolve_alias(name, alias)
    if version is None:
        raise NoVersion(f"registered model {name!r} has no @{alias} version")
    return version, load_version(name, version)


def log_sweep(
    run_name: str,
    params: Mapping[str, Any],
    trials: pd.DataFrame,
    best_params: Mapping[str, Any],
    metric: str,
    best_metric: float,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """One parent run for a hyperparameter sweep with a nested child run per trial; returns its id.

    ``tables`` (e.g. the walk-forward fold table) are logged on the parent run as ``<name>.json``.
    """
    with mlflow.start_run(run_name=run_name) as parent:
        mlflow.set_tag(KIND_TAG, "sweep")
        for name, table in (tables or {}).items():
            mlflow.log_table(table, artifact_file=f"{name}.json")
        mlflow.log_params(_flatten("", params))
        mlflow.log_params(_flatten("best/", best_params))
        mlflow.log_metric(f"best/{metric}", float(best_metric))
        mlflow.log_metric("trials", float(len(trials)))
        for trial in trials.to_dict(orient="records"):
            with mlflow.start_run(run_name=f"trial-{trial['trial_id']}", nested=True):
                mlflow.set_tag(KIND_TAG, "trial")
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


def run_settings(run_id: str) -> dict[str, Any] | None:
    """The settings a run logged (``config.json``), or None when it logged none."""
    try:
        return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json"))
    except (MlflowException, OSError):
        return None
