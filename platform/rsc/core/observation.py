"""The policy's observation: a window of scaled features plus the current position weight.

Shared by the env and the served policy, so both see exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

# Scaled features are clipped to +-FEATURE_CLIP, which also bounds the observation space.
FEATURE_CLIP = 10.0


def observation_size(window: int, n_features: int) -> int:
    return window * n_features + 1


def observe(features: np.ndarray, t: int, window: int, position_weight: float) -> np.ndarray:
    """Observation at bar ``t``.

    Args:
        features: ``[T, F]`` scaled features; rows ``t - window + 1 .. t`` are read.
    """
    out = np.empty(window * features.shape[1] + 1, dtype=np.float32)
    out[:-1] = features[t - window + 1 : t + 1].ravel()
    out[-1] = position_weight
    return out


def scale(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardise ``[T, F]`` with statistics fitted on the training part only; clipped to +-FEATURE_CLIP."""
    return np.clip((features - mean) / np.where(std > 0, std, 1.0), -FEATURE_CLIP, FEATURE_CLIP)
