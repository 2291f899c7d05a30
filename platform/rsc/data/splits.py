"""Splits by time: the single train / validation / test split, walk-forward folds across the history
before the test part (with purge and embargo), and feature scalers fitted on training rows only.

Folds live on the time axis (the sorted distinct timestamps of all symbols), so every symbol's rows
of one bar fall in the same window. Purge and embargo follow López de Prado, *Advances in Financial
Machine Learning* (2018), ch. 7: a training row ``t`` whose label spans ``[t, t + horizon]`` is
dropped when that span reaches into an evaluation window (purge), and so is a training row within
``embargo`` bars after an evaluation window ends (embargo). In a walk-forward fold training precedes
its validation window, so only the purge acts there; the embargo acts where training rows follow an
evaluation window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rsc.config.settings import WalkForwardSettings
from rsc.core.schema import HOLDOUT, PART, TEST, TIMESTAMP, TRAIN, VALIDATION


def assign_parts(
    frame: pd.DataFrame, train_end: date, validation_end: date, holdout_bars: int | None = None
) -> pd.DataFrame:
    """Label each row train (<= train_end), validation (<= validation_end), test, or holdout (the rows
    of the last ``holdout_bars`` timestamps, when given)."""
    stamps = frame[TIMESTAMP]
    out = frame.copy()
    out[PART] = np.where(
        stamps < pd.Timestamp(train_end) + pd.Timedelta(days=1),
        TRAIN,
        np.where(stamps < pd.Timestamp(validation_end) + pd.Timedelta(days=1), VALIDATION, TEST),
    )
    if holdout_bars:
        axis = np.unique(stamps.to_numpy())
        if holdout_bars >= len(axis):
            raise ValueError(
                f"split.holdout_bars={holdout_bars} leaves no bars before it ({len(axis)} in all)"
            )
        start = axis[-holdout_bars]
        if start <= np.datetime64(pd.Timestamp(validation_end) + pd.Timedelta(days=1)):
            raise ValueError(
                f"split.holdout_bars={holdout_bars} leaves no test part: the holdout would start at "
                f"{str(start)[:10]}, the test part starts after split.validation_end ({validation_end}); "
                "use fewer holdout bars or an earlier split.validation_end"
            )
        out.loc[stamps.to_numpy() >= start, PART] = HOLDOUT
    for part in (TRAIN, VALIDATION, TEST):
        if not (out[PART] == part).any():
            raise ValueError(
                f"the {part} part is empty: check split.train_end / split.validation_end"
                + (" / split.holdout_bars" if holdout_bars else "")
            )
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
    purged: int  # training and validation positions dropped by purge and embargo


# Fewer validation returns than this give an annualised Sharpe ratio of 0.0 (evaluate.min_periods).
MIN_VALIDATION_BARS = 20


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


def walk_forward(
    n_times: int,
    settings: WalkForwardSettings,
    history_end: int | None = None,
    bars_per_year: float | None = None,
) -> list[Fold]:
    """Folds across the history before the test part, laid from its start, oldest first.

    The history ``[0, history_end)`` is an initial training window followed by ``folds`` validation
    windows that tile the rest, so the last one ends where the test part begins. Fold ``k`` trains on
    everything before its validation window (``expanding``) or on the ``train_bars`` before it
    (``rolling``); purge drops the training bars whose label reaches the validation window, and
    validation bars whose label reaches the test part. Unset sizes follow the data's length: the
    first training window and each validation window get ``history / (folds + 1)`` bars.

    Args:
        n_times: bars on the time axis; ``history_end``: where the test part starts (default: the end).
        bars_per_year: the data's frequency, to state sizes in years in an error.

    Raises:
        ValueError: if the history is too short for the folds asked for, naming what is needed.
    """
    s = settings
    end = n_times if history_end is None else history_end
    if s.folds == 0:
        return []
    train_bars = s.train_bars or end // (s.folds + 1)
    validation_bars = s.validation_bars or (end - train_bars) // s.folds
    least_validation = MIN_VALIDATION_BARS + s.label_horizon
    need = (s.train_bars or 2 + s.label_horizon) + s.folds * max(s.validation_bars or 0, least_validation)
    short = (
        train_bars + s.folds * validation_bars > end
        or validation_bars < least_validation
        or train_bars < 2 + s.label_horizon
    )
    if short:
        years = (
            f" (about {end / bars_per_year:.2g} years at {bars_per_year:g} bars a year)"
            if bars_per_year
            else ""
        )
        raise ValueError(
            f"split.walk_forward: {s.folds} folds ({s.mode}) need at least {need} bars before the test part "
            f"({s.folds} validation windows of at least {least_validation} bars after a first training "
            f"window); the history up to split.validation_end has {end}{years}: lower "
            "split.walk_forward.folds, set train_bars / validation_bars, or move split.validation_end"
        )
    folds = []
    test_part = [(end, n_times)] if end < n_times else []
    first = end - s.folds * validation_bars
    for k in range(s.folds):
        val_start = first + k * validation_bars
        val_stop = val_start + validation_bars
        train_start = 0 if s.mode == "expanding" else max(0, val_start - train_bars)
        train_candidates = np.arange(train_start, val_start)
        validation_candidates = np.arange(val_start, val_stop)
        train = purge_and_embargo(train_candidates, [(val_start, val_stop)], s.label_horizon, s.embargo_bars)
        validation = purge_and_embargo(validation_candidates, test_part, s.label_horizon, s.embargo_bars)
        purged = len(train_candidates) - len(train) + len(validation_candidates) - len(validation)
        folds.append(Fold(train, validation, purged))
    return folds


def time_axis(frame: pd.DataFrame) -> np.ndarray:
    """The sorted distinct timestamps of ``frame``: ``[n]`` datetime64."""
    return np.unique(frame[TIMESTAMP].to_numpy())


def fold_ranges(fold: Fold, axis: np.ndarray) -> dict[str, list[str]]:
    """Each part's first and last timestamp (inclusive); the parts are contiguous on the axis."""
    return {
        part: [str(pd.Timestamp(axis[positions[0]])), str(pd.Timestamp(axis[positions[-1]]))]
        for part, positions in ((TRAIN, fold.train), (VALIDATION, fold.validation))
    }


def assign_fold(frame: pd.DataFrame, ranges: dict[str, Sequence[str]]) -> pd.DataFrame:
    """Rows of ``frame`` inside one fold's ranges, labelled with their part (others dropped).

    ``ranges`` is a fold entry of ``folds.json`` (or :func:`fold_ranges`), so that training code
    selects exactly the rows the split stage fitted the fold's scaler on.
    """
    stamps = frame[TIMESTAMP]
    part = pd.Series(pd.NA, index=frame.index, dtype="string")
    for name in (TRAIN, VALIDATION, TEST):
        if ranges.get(name) is None:  # folds laid from the start have no test window of their own
            continue
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
        "rows": {part: int((rows[PART] == part).sum()) for part in (TRAIN, VALIDATION)},
        "purged_bars": fold.purged,
        "scaler": fit_scaler(rows, columns),
    }
