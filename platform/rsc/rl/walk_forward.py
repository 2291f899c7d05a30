"""Walk-forward model selection: score each candidate configuration on every fold, then aggregate.

A candidate that shines on one validation window and fails on the next is a lucky draw, not a model;
selecting by an aggregate across folds (the mean, the worst fold, or the mean less one standard
deviation) prefers configurations that hold up out of sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from rsc.core.artifacts import FoldRecord

AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda values: float(np.mean(values)),
    "worst": lambda values: float(np.min(values)),
    "mean_minus_std": lambda values: float(
        np.mean(values) - np.std(values, ddof=1 if len(values) > 1 else 0)
    ),
}


def summarise(per_fold: pd.DataFrame, metric: str, how: str) -> pd.DataFrame:
    """One row per candidate: the metric's mean, std, worst and the selection ``score`` (higher is better).

    Args:
        per_fold: one row per (``candidate``, ``fold``) with a column ``metric``.
    """
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}; known: {sorted(AGGREGATES)}")
    rows = []
    for candidate, group in per_fold.groupby("candidate", sort=True):
        values = group[metric].to_numpy(np.float64)
        rows.append(
            {
                "candidate": candidate,
                "folds": len(values),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "worst": float(values.min()),
                "score": AGGREGATES[how](values),
            }
        )
    return pd.DataFrame(rows)


def select(summary: pd.DataFrame) -> int:
    """The candidate with the highest score (the first one on ties)."""
    return int(summary.sort_values(["score", "candidate"], ascending=[False, True]).iloc[0]["candidate"])


def usable_folds(folds: Sequence[FoldRecord], last_validation_day: str) -> list[FoldRecord]:
    """Folds whose validation window ends by ``last_validation_day``: the held-out test part never
    takes part in model selection."""
    limit = pd.Timestamp(last_validation_day) + pd.Timedelta(days=1)
    return [fold for fold in folds if pd.Timestamp(fold.validation[1]) < limit]
