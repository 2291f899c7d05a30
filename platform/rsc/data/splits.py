"""Train / validation / test by date, and the feature scaler fitted on the training part only."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

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
    return {"columns": columns, "mean": train.mean(axis=0).tolist(), "std": train.std(axis=0).tolist()}
