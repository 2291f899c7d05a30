"""Splits by time: the single train / validation / test split, walk-forward folds with purge and
embargo, and feature scalers fitted on training rows only.

Folds live on the time axis (the sorted distinct timestamps of all symbols), so every symbol's rows
of one bar fall in the same window. Purge and embargo follow López de Prado, *Advances in Financial
Machine Learning* (2018), ch. 7: a training row ``t`` whose label spans ``[t, t + horizon]`` is
dropped when that span reaches into an evaluation window (purge), and so is a training row within
``embargo`` bars after an evaluation window ends (embargo). In a walk-forward fold training precedes
its windows, so the embargo shows as the gap after each test window, which no other fold tests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rsc.config.settings import WalkForwardSettings
from rsc.core.schema import PART, TEST, TIMESTAMP, TRAIN, VALIDATION


def assign_parts(frame: pd.DataFrame, train_end: date, validation_end: date) -> pd.DataFrame:
    """Label each row train (<= train_end), validation (<= validation_end) or test."""
    stamps = frame[TIMESTAMP]
    out = frame.copy()
    out[PART] = np.where(
        stamps < pd.Timestamp(train_end) + pd.Timedelta(days=1),
        TRAIN,
        np.where(stamps < pd.Timestamp(validation_end) + pd.Timedelta(days=1), VALIDATION, TEST),
    )
    for part in (TRAIN, VALIDATION, TEST):
        if not (out[PART] == part).any():
            raise ValueError(f"the {part} part is empty: check split.train_end / split.validation_end")
    return out


def fit_scaler(frame: pd.DataFrame, columns: list[str]) -> dict[str, list[float]]:
    """Mean and std (ddof=0) of each feature over the training rows only."""
    train = frame.loc[frame[PART] == TRAIN, columns].to_numpy(np.float64)
    if len(train) == 0:
        raise ValueError("cannot fit a scaler: no training rows")
    return {"columns": columns, "mean": train.mean(axis=0).tolist(), "std": train.std(axis=0).tolist()}


# -- walk-forward ----------------------------------------------------------------------------------


class Fold(NamedTuple):
    """Positions on the time axis (``[n]`` int arrays, ascending) of one fold's parts."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    purged: int  # training and validation positions dropped by purge and embargo


def purge_and_embargo(
    candidates: np.ndarray, windows: Sequence[tuple[int, int]], horizon: int, embargo: int
) -> np.ndarray:
    """Training positions that neither see into nor sit right after an evaluation window.

    Args:
        candidates: ``[n]`` positions that could train.
        windows: evaluation windows as ``[start, stop)`` positions.
        horizon: bars a label looks ahead: ``t`` goes when ``[t, t + horizon]`` meets a window.
        embargo: bars after each window's end that are dropped as well.
    """
    keep = np.ones(len(candidates), dtype=bool)
    for start, stop in windows:
        keep &= ~((candidates + horizon >= start) & (candidates < stop + embargo))
    return candidates[keep]


def walk_forward(n_times: int, settings: WalkForwardSettings) -> list[Fold]:
    """Folds, oldest first; the last test window ends at the last bar.

    Layout of fold ``k``: ``train | validation | test | embargo`` (purge carves the last
    ``label_horizon`` bars off train and validation); fold ``k - 1`` ends its test window
    ``embargo_bars`` before fold ``k``'s starts.

    Raises:
        ValueError: if the time axis is too short for the folds asked for.
    """
    s = settings
    folds = []
    test_stop = n_times
    for _ in range(s.folds):
        test = np.arange(test_stop - s.test_bars, test_stop)
        val_start = test[0] - s.validation_bars
        train_start = 0 if s.mode == "expanding" else val_start - s.train_bars
        if train_start < 0 or val_start - max(train_start, 0) < s.train_bars:
            need = s.train_bars + s.validation_bars + s.folds * s.test_bars + (s.folds - 1) * s.embargo_bars
            raise ValueError(
                f"split.walk_forward: {s.folds} folds ({s.mode}, train {s.train_bars}, validation "
                f"{s.validation_bars}, test {s.test_bars}, embargo {s.embargo_bars} bars) need at least "
                f"{need} bars; the data has {n_times}"
            )
        windows = [(int(val_start), int(test[0])), (int(test[0]), int(test_stop))]
        train_candidates = np.arange(train_start, val_start)
        validation_candidates = np.arange(val_start, test[0])
        train = purge_and_embargo(train_candidates, windows, s.label_horizon, s.embargo_bars)
        validation = purge_and_embargo(validation_candidates, windows[1:], s.label_horizon, s.embargo_bars)
        if len(validation) == 0:
            raise ValueError(
                f"split.walk_forward: validation_bars ({s.validation_bars}) must exceed label_horizon "
                f"({s.label_horizon})"
            )
        purged = len(train_candidates) - len(train) + len(validation_candidates) - len(validation)
        folds.append(Fold(train, validation, test, purged))
        test_stop = int(test[0]) - s.embargo_bars
    return folds[::-1]


def time_axis(frame: pd.DataFrame) -> np.ndarray:
    """The sorted distinct timestamps of ``frame``: ``[n]`` datetime64."""
    return np.unique(frame[TIMESTAMP].to_numpy())


def fold_ranges(fold: Fold, axis: np.ndarray) -> dict[str, list[str]]:
    """Each part's first and last timestamp (inclusive); the parts are contiguous on the axis."""
    return {
        part: [str(pd.Timestamp(axis[positions[0]])), str(pd.Timestamp(axis[positions[-1]]))]
        for part, positions in ((TRAIN, fold.train), (VALIDATION, fold.validation), (TEST, fold.test))
    }


def assign_fold(frame: pd.DataFrame, ranges: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Rows of ``frame`` inside one fold's ranges, labelled with their part (others dropped).

    ``ranges`` is a fold entry of ``folds.json`` (or :func:`fold_ranges`), so that training code
    selects exactly the rows the split stage fitted the fold's scaler on.
    """
    stamps = frame[TIMESTAMP]
    part = pd.Series(pd.NA, index=frame.index, dtype="string")
    for name in (TRAIN, VALIDATION, TEST):
        first, last = (pd.Timestamp(x) for x in ranges[name])
        part[(stamps >= first) & (stamps <= last)] = name
    out = frame.loc[part.notna()].copy()
    out[PART] = part[part.notna()].astype(str).to_numpy()
    return out


def fold_summary(fold: Fold, axis: np.ndarray, frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """One fold as ``folds.json`` stores it: date ranges, row counts and the fold's own scaler."""
    ranges = fold_ranges(fold, axis)
    rows = assign_fold(frame, ranges)
    return {
        **ranges,
        "rows": {part: int((rows[PART] == part).sum()) for part in (TRAIN, VALIDATION, TEST)},
        "purged_bars": fold.purged,
        "scaler": fit_scaler(rows, columns),
    }
