"""How many independent tries stand behind a selected model: the effective number of trials.

Every checkpoint a search looked at on validation data is a try, but they are not independent: the
checkpoints of one trial, or two trials with nearly the same hyperparameters, trade almost alike.
Counting each as independent would over-deflate the Sharpe ratio; counting only Tune's trials
under-counts the search. Following López de Prado ("Machine Learning for Asset Managers", 2020, ch. 4
and 8), the validation return series of all tries are clustered by correlation and each cluster counts
as one independent trial. Clustering here is average-linkage on the distance ``sqrt((1 - rho) / 2)``,
cut where the average correlation within a cluster falls below ``min_correlation``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


class EffectiveTrials(NamedTuple):
    n: int  # independent trials: clusters of correlated series
    labels: np.ndarray  # [N] cluster of each series (1-based; flat series share one)
    series: int  # series clustered


def correlation_distance(correlation: float) -> float:
    return float(np.sqrt(max(0.0, (1.0 - correlation) / 2.0)))


def effective_trials(returns: np.ndarray, min_correlation: float = 0.5) -> EffectiveTrials:
    """Cluster the columns of ``returns`` ``[T, N]`` (one series per try, on one common window).

    Series without variance (a policy that never trades) carry no information about each other: they
    form one cluster together. Raises ``ValueError`` for an empty or non-finite matrix.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[1] == 0 or len(returns) < 2:
        raise ValueError(f"needs a [T, N] matrix with T >= 2 and N >= 1, got shape {returns.shape}")
    if not np.isfinite(returns).all():
        raise ValueError("the return series have NaN or inf values")
    if not -1.0 < min_correlation < 1.0:
        raise ValueError(f"min_correlation must lie in (-1, 1), got {min_correlation}")
    labels = np.zeros(returns.shape[1], dtype=int)
    flat = returns.std(axis=0) <= 1e-12
    live = np.flatnonzero(~flat)
    clusters = 0
    if len(live) == 1:
        labels[live] = clusters = 1
    elif len(live) > 1:
        correlation = np.clip(np.corrcoef(returns[:, live], rowvar=False), -1.0, 1.0)
        distance = np.sqrt(np.clip((1.0 - correlation) / 2.0, 0.0, None))
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="average")
        labels[live] = fcluster(tree, t=correlation_distance(min_correlation), criterion="distance")
        clusters = int(labels[live].max())
    if flat.any():
        clusters += 1
        labels[flat] = clusters
    return EffectiveTrials(n=clusters, labels=labels, series=returns.shape[1])
