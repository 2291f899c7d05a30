"""The policy's observation: a window of scaled features plus the position state.

Layout ``[window * F + 2]``: feature rows ``t - window + 1 .. t`` (oldest first, flattened), then the
position weight and the position's unrealised return. Shared by the env and the served policy, so
both see exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

# Scaled features are clipped to +-FEATURE_CLIP, which also bounds the observation space.
FEATURE_CLIP = 10.0
POSITION_SLOTS = 2  # position weight, unrealised return


def observation_size(window: int, n_features: int) -> int:
    return window * n_features + POSITION_SLOTS


def observe(
    features: np.ndarray, t: int, window: int, position_weight: float, unrealised: float
) -> np.ndarray:
    """Observation at bar ``t``.

    Args:
        features: ``[T, F]`` scaled features; rows ``t - window + 1 .. t`` are read.
    """
    out = np.empty(window * features.shape[1] + POSITION_SLOTS, dtype=np.float32)
    out[:-POSITION_SLOTS] = features[t - window + 1 : t + 1].ravel()
    out[-2], out[-1] = position_weight, unrealised
    return out


def window_rows(features: np.ndarray, window: int, extra: int = POSITION_SLOTS) -> np.ndarray:
    """``[T, window * F + extra]`` float32: row ``t`` is the flattened window ending at ``t``, then zeros.

    Precomputed once so that an env copies contiguous rows instead of gathering a window each step.
    Rows before ``window - 1`` are zero (never observed).
    """
    flat = features.reshape(len(features), -1)
    width = window * flat.shape[1]
    rows = np.zeros((len(flat), width + extra), dtype=np.float32)
    if len(flat) >= window:
        views = np.lib.stride_tricks.sliding_window_view(flat, window, axis=0)  # [T-W+1, F, W]
        rows[window - 1 :, :width] = views.transpose(0, 2, 1).reshape(len(views), width)
    return rows


def scale(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardise ``[..., F]`` with statistics fitted on training rows only; clipped to +-FEATURE_CLIP."""
    return np.clip((features - mean) / np.where(std > 0, std, 1.0), -FEATURE_CLIP, FEATURE_CLIP)
