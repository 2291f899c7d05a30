"""Every path under a run root, in one place, and the run's JSON artifacts read and written as models.

A stage never spells ``"scaler.json"`` or ``join(run_root, "tune", ...)``: it asks the run's
:class:`RunLayout`. :data:`PATTERNS` lists what may live under a run root, so a test can walk a finished
run and check that every file belongs to a field here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from rsc.core.artifacts import Folds, Scaler, SearchRecord, TuneOutcome
from rsc.core.policy_spec import PolicySpec, PolicySpecError
from rsc.core.schema import CHECKPOINT_DIR, DRIFT_REFERENCE_FILE, NETWORK_FILE, POLICY_FILE, WALK_FORWARD_FILE
from rsc.storage.store import Storage, join

Model = TypeVar("Model", bound=BaseModel)

# Field of RunLayout -> the paths (relative to the run root) it owns.
PATTERNS: dict[str, tuple[str, ...]] = {
    "bars": ("bars/*",),
    "quality": ("quality.json",),
    "features": ("features/*",),
    "split": ("split/*",),
    "scaler": ("scaler.json",),
    "folds": ("folds.json",),
    "best_params": ("tune/best_params.json",),
    "trials": ("tune/trials.parquet",),
    "trial_returns": ("tune/trial_returns.parquet",),
    "checkpoint_returns": ("tune/checkpoint_returns.parquet",),
    "search": ("tune/search.json",),
    "walk_forward": (f"tune/{WALK_FORWARD_FILE}",),
    "walk_forward_returns": ("tune/walk_forward_returns.parquet",),
    "sweep": ("tune/sweep/*",),
    "walk_forward_folds": ("tune/walk_forward/*",),
    "model": ("model/*",),
    "metrics": ("evaluation/metrics.json",),
    "report": ("evaluation/report.html",),
    "paper": ("paper/*",),
    "logs": ("logs/*",),
    "kfp": ("kfp/*",),
    "jobs": ("jobs/*.json",),
}


class ArtifactError(ValueError):
    """A run artifact that cannot be read as its model; the message names the file and the field."""


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run (``root``: ``Settings.run_root``)."""

    root: str

    # -- datasets and split artifacts (ingest, features, split) --------------------------------
    @property
    def bars(self) -> str:
        return join(self.root, "bars")

    @property
    def quality(self) -> str:
        """The data-quality warnings of the ingested bars (``rsc.data.quality``)."""
        return join(self.root, "quality.json")

    @property
    def features(self) -> str:
        return join(self.root, "features")

    @property
    def split(self) -> str:
        return join(self.root, "split")

    @property
    def scaler(self) -> str:
        return join(self.root, "scaler.json")

    @property
    def folds(self) -> str:
        return join(self.root, "folds.json")

    # -- tune ----------------------------------------------------------------------------------
    @property
    def best_params(self) -> str:
        return join(self.root, "tune", "best_params.json")

    @property
    def trials(self) -> str:
        return join(self.root, "tune", "trials.parquet")

    @property
    def trial_returns(self) -> str:
        return join(self.root, "tune", "trial_returns.parquet")

    @property
    def checkpoint_returns(self) -> str:
        """Every Tune checkpoint's validation bar returns, one column ``<trial>/iter-<k>`` each."""
        return join(self.root, "tune", "checkpoint_returns.parquet")

    @property
    def search(self) -> str:
        """Every try the selection looked at (:class:`rsc.core.artifacts.SearchRecord`)."""
        return join(self.root, "tune", "search.json")

    @property
    def walk_forward(self) -> str:
        return join(self.root, "tune", WALK_FORWARD_FILE)

    @property
    def walk_forward_returns(self) -> str:
        return join(self.root, "tune", "walk_forward_returns.parquet")

    @property
    def sweep(self) -> str:
        """The Tune experiment (its state and trials), on the run root's own storage."""
        return join(self.root, "tune", "sweep")

    def fold(self, index: int) -> str:
        """Walk-forward fold ``index``: ``data`` (its rows), ``scaler.json``, ``candidate-<n>`` models."""
        return join(self.root, "tune", "walk_forward", f"fold-{index}")

    # -- model and evaluation ------------------------------------------------------------------
    @property
    def model(self) -> str:
        return join(self.root, "model")

    @property
    def policy(self) -> str:
        return join(self.model, POLICY_FILE)

    @property
    def network(self) -> str:
        return join(self.model, NETWORK_FILE)

    @property
    def checkpoint(self) -> str:
        return join(self.model, CHECKPOINT_DIR)

    @property
    def drift_reference(self) -> str:
        """A sample of the scaled training rows, which the endpoint's drift watch compares requests with."""
        return join(self.model, DRIFT_REFERENCE_FILE)

    @property
    def metrics(self) -> str:
        return join(self.root, "evaluation", "metrics.json")

    @property
    def report(self) -> str:
        return join(self.root, "evaluation", "report.html")

    # -- what runs around the stages -----------------------------------------------------------
    def paper(self, session: str) -> str:
        """A paper-trading session's ledger."""
        return join(self.root, "paper", session)

    @property
    def logs(self) -> str:
        return join(self.root, "logs")

    @property
    def kfp(self) -> str:
        """KFP's local pipeline root (executor inputs and outputs of ``rsc run``)."""
        return join(self.root, "kfp")

    def job_result(self, name: str) -> str:
        """Where a stage run by a remote launcher (a Ray job, a RayJob) leaves its result."""
        return join(self.root, "jobs", f"{name}.json")


def field_of(relative: str) -> str | None:
    """The :class:`RunLayout` field owning a path relative to a run root (None: not the layout's)."""
    for field, patterns in PATTERNS.items():
        if any(fnmatch(relative, pattern) for pattern in patterns):
            return field
    return None


def read_artifact(storage: Storage, uri: str, model: type[Model]) -> Model:
    """A JSON artifact as its model; one error naming the file and what is wrong with it."""
    try:
        return model.model_validate(storage.read_json(uri))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ArtifactError(f"{uri}: not a valid {model.__name__}: {problems}") from error


def write_artifact(storage: Storage, uri: str, value: BaseModel) -> None:
    storage.write_json(uri, value.model_dump(mode="json"))


def read_scaler(storage: Storage, uri: str) -> Scaler:
    return read_artifact(storage, uri, Scaler)


def read_folds(storage: Storage, uri: str) -> Folds:
    return read_artifact(storage, uri, Folds)


def read_tune_outcome(storage: Storage, uri: str) -> TuneOutcome:
    return read_artifact(storage, uri, TuneOutcome)


def read_search(storage: Storage, uri: str) -> SearchRecord:
    return read_artifact(storage, uri, SearchRecord)


def read_policy(storage: Storage, uri: str) -> PolicySpec:
    """``policy.json`` (any version this code reads) as the policy contract."""
    try:
        return PolicySpec.from_json(storage.read_bytes(uri), uri)
    except PolicySpecError as error:
        raise ArtifactError(str(error)) from error
