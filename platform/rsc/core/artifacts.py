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
