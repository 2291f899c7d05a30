"""OHLCV validation: one clear error per problem, naming the source, the symbol and the row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsc.core.schema import (
    BAR_COLUMNS,
    CLOSE,
    HIGH,
    LOW,
    OHLCV_COLUMNS,
    OPEN,
    PRICE_COLUMNS,
    TIMESTAMP,
    VOLUME,
)


class DataValidationError(ValueError):
    """Bad bars; the message says what, where and in which row."""


def _fail(source: str, symbol: str, message: str, frame: pd.DataFrame | None = None, row=None) -> None:
    where = f"{source} [{symbol}]"
    if frame is not None and row is not None:
        stamp = frame[TIMESTAMP].iloc[row] if TIMESTAMP in frame.columns else "?"
        where += f" row {row} ({stamp})"
    raise DataValidationError(f"{where}: {message}")


def validate_bars(frame: pd.DataFrame, source: str, symbol: str) -> pd.DataFrame:
    """Check one symbol's bars and return them typed (UTC-naive timestamps, float prices).

    Raises:
        DataValidationError: on the first problem found.
    """
    if frame.empty:
        _fail(source, symbol, "no bars (empty input)")
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        _fail(source, symbol, f"missing column(s) {missing}; expected {list(BAR_COLUMNS)}")
    frame = frame.reset_index(drop=True).copy()
    for column in OHLCV_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(source, symbol, f"non-numeric {column} {frame[column].iloc[row]!r}", frame, row)
        frame[column] = values.astype(np.float64)
        finite = np.isfinite(frame[column].to_numpy())
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            _fail(source, symbol, f"{column} is {frame[column].iloc[row]} (NaN or inf)", frame, row)
    try:
        stamps = pd.to_datetime(frame[TIMESTAMP])
    except (ValueError, TypeError) as error:
        _fail(source, symbol, f"unparseable timestamp: {error}")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    frame[TIMESTAMP] = stamps.astype("datetime64[ns]")
    diffs = np.diff(frame[TIMESTAMP].to_numpy().astype("int64"))
    if (diffs == 0).any():
        row = int(np.flatnonzero(diffs == 0)[0]) + 1
        _fail(source, symbol, "duplicate timestamp", frame, row)
    if (diffs < 0).any():
        row = int(np.flatnonzero(diffs < 0)[0]) + 1
        _fail(source, symbol, "timestamps not sorted ascending", frame, row)
    prices = frame[list(PRICE_COLUMNS)].to_numpy()
    if (prices <= 0).any():
        row = int(np.flatnonzero((prices <= 0).any(axis=1))[0])
        _fail(source, symbol, "non-positive price", frame, row)
    high_bad = frame[HIGH] < frame[[OPEN, CLOSE]].max(axis=1)
    if high_bad.any():
        _fail(
            source, symbol, "high below max(open, close)", frame, int(np.flatnonzero(high_bad.to_numpy())[0])
        )
    low_bad = frame[LOW] > frame[[OPEN, CLOSE]].min(axis=1)
    if low_bad.any():
        _fail(source, symbol, "low above min(open, close)", frame, int(np.flatnonzero(low_bad.to_numpy())[0]))
    if (frame[VOLUME] < 0).any():
        _fail(
            source, symbol, "negative volume", frame, int(np.flatnonzero((frame[VOLUME] < 0).to_numpy())[0])
        )
    return frame
