"""Feature drift of live data against a reference window: population stability index and KS.

PSI (Siddiqi, *Credit Risk Scorecards*, 2006): bin both samples on the reference's quantiles and sum
``(live% - ref%) * ln(live% / ref%)`` over the bins; the usual reading is < 0.1 stable, 0.1-0.25
shifting, > 0.25 drifted. The two-sample Kolmogorov-Smirnov statistic is the largest gap between
the two empirical CDFs (``scipy.stats.ks_2samp``), with its p-value. Non-finite values are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from rsc.core import observation
from rsc.core.schema import PART, TRAIN

# Floor on a bin's share, so that an empty bin gives a large but finite PSI term.
MIN_SHARE = 1e-4


class Drift(NamedTuple):
    feature: str
    psi: float
    ks: float
    ks_pvalue: float


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def psi(reference: np.ndarray, live: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``live`` against ``reference`` (1-d samples).

    Bin edges are the reference's ``1/bins`` quantiles (repeated edges merged), open at both ends,
    so every live value lands in a bin.
    """
    ref, new = _finite(reference), _finite(live)
    if len(ref) == 0 or len(new) == 0:
        raise ValueError("psi needs at least one finite value in each sample")
    inner = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    ref_share = np.maximum(np.histogram(ref, edges)[0] / len(ref), MIN_SHARE)
    new_share = np.maximum(np.histogram(new, edges)[0] / len(new), MIN_SHARE)
    return float(np.sum((new_share - ref_share) * np.log(new_share / ref_share)))


def ks(reference: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    ref, new = _finite(reference), _finite(live)
    if len(ref) == 0 or len(new) == 0:
        raise ValueError("ks needs at least one finite value in each sample")
    result = stats.ks_2samp(ref, new)
    return float(result.statistic), float(result.pvalue)


def feature_drift(
    reference: np.ndarray, live: np.ndarray, names: Sequence[str], bins: int = 10
) -> list[Drift]:
    """PSI and KS per feature column.

    Args:
        reference: ``[N, F]`` features of the reference window (training rows).
        live: ``[M, F]`` the latest live features.
        names: the ``F`` feature names.
    """
    reference, live = np.atleast_2d(reference), np.atleast_2d(live)
    if reference.shape[1] != len(names) or live.shape[1] != len(names):
        raise ValueError(
            f"feature_drift: {len(names)} names, reference has {reference.shape[1]} columns, "
            f"live has {live.shape[1]}"
        )
    out = []
    for j, name in enumerate(names):
        statistic, pvalue = ks(reference[:, j], live[:, j])
        out.append(Drift(name, psi(reference[:, j], live[:, j], bins), statistic, pvalue))
    return out


def drift_reference(
    frame: pd.DataFrame,
    columns: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    max_rows: int = 2_000,
) -> bytes:
    """``drift_reference.json``: an evenly spaced sample of the training rows' features, scaled as the
    policy scales them (what the endpoint's drift watch compares requests with)."""
    rows = frame.loc[frame[PART] == TRAIN, list(columns)].to_numpy(np.float64)
    rows = observation.scale(rows[np.isfinite(rows).all(axis=1)], np.asarray(mean), np.asarray(std))
    if len(rows) > max_rows:
        rows = rows[np.linspace(0, len(rows) - 1, max_rows).round().astype(int)]
    return json.dumps({"features": list(columns), "part": TRAIN, "rows": rows.round(6).tolist()}).encode()
