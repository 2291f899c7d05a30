"""The small JSON artifacts a run passes between stages, as typed models (no dict key reads past here).

``scaler.json`` (split), ``folds.json`` (split) and ``tune/best_params.json`` (tune) are read and
written through :class:`rsc.storage.layout.RunLayout` as these models; ``policy.json`` is the
:class:`rsc.core.policy_spec.PolicySpec`. Unknown keys are kept out (``extra="forbid"``), so a
misspelt or stale key is an error naming the file rather than a silent default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scaler(_Artifact):
    """Per-column statistics fitted on training rows only (``scaler.json``)."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    inputs: dict[str, str] = Field(default_factory=dict, description="Hashes of the data it was fitted on.")

    @model_validator(mode="after")
    def _same_lengths(self) -> Scaler:
        if not len(self.columns) == len(self.mean) == len(self.std):
            raise ValueError(f"{len(self.columns)} columns, {len(self.mean)} means, {len(self.std)} stds")
        return self


class FoldRecord(_Artifact):
    """One walk-forward fold: date ranges (inclusive), row counts and the scaler of its training rows."""

    train: tuple[str, str]
    validation: tuple[str, str]
    test: tuple[str, str] | None = None  # folds laid before this release carried a test window too
    rows: dict[str, int]
    purged_bars: int = 0
    scaler: Scaler


class Folds(_Artifact):
    """``folds.json``: the walk-forward folds and the settings that laid them."""

    settings: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    folds: tuple[FoldRecord, ...] = ()


class TuneOutcome(_Artifact):
    """``tune/best_params.json``: what the search chose and how."""

    best_params: dict[str, Any] = Field(default_factory=dict)
    selected_by: str | None = None
    metric: str | None = None
    best_metric: float | None = None
    trials: int = 0
    algorithm: str | None = None


class SearchRecord(_Artifact):
    """``tune/search.json``: every model the selection looked at on validation data, counted where it ran.

    A "try" is one validation backtest whose figure a choice could follow: each checkpoint of each Tune
    trial, each checkpoint of each walk-forward re-training (candidate x fold), and each checkpoint of
    the final training (whose best iteration is kept). The tune stage writes the first two, the train
    stage adds its own.
    """

    tune_trials: dict[str, int] = Field(default_factory=dict, description="trial id -> validations")
    compared_sharpes: dict[str, float] = Field(
        default_factory=dict, description="trial id -> the validation Sharpe ratio the sweep ranked it by"
    )
    walk_forward: dict[str, int] = Field(
        default_factory=dict, description="candidate-<n>/fold-<k> -> validations of that re-training"
    )
    final_training: int | None = Field(None, description="validations of the final training")

    @property
    def raw_count(self) -> int:
        return sum(self.tune_trials.values()) + sum(self.walk_forward.values()) + (self.final_training or 0)

    def breakdown(self) -> dict[str, int]:
        """The raw count by where it ran (the report's and metrics.json's wording)."""
        candidates = {key.split("/")[0] for key in self.walk_forward}
        folds = {key.split("/")[-1] for key in self.walk_forward}
        return {
            "tune_trials": len(self.tune_trials),
            "tune_checkpoints": sum(self.tune_trials.values()),
            "walk_forward_candidates": len(candidates),
            "walk_forward_folds": len(folds),
            "walk_forward_checkpoints": sum(self.walk_forward.values()),
            "final_training_checkpoints": self.final_training or 0,
        }
