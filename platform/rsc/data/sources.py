"""Where bars come from: the bundled real samples, CSV files and Parquet files (local or s3://)."""

from __future__ import annotations

import io
from datetime import date
from importlib import resources

import pandas as pd

from rsc.config.settings import DataSettings
from rsc.core.schema import BAR_COLUMNS, SYMBOL, TIMESTAMP
from rsc.storage import Storage

# Real daily bars shipped with the package: S&P 500 index 1999-2018, GOOG 2004-2013.
BUNDLED: dict[str, str] = {"SPX": "sp500_daily.csv", "GOOG": "goog_daily.csv"}


def load_bundled(symbol: str) -> pd.DataFrame:
    if symbol not in BUNDLED:
        raise ValueError(f"no bundled sample for symbol {symbol!r}; bundled: {sorted(BUNDLED)}")
    text = resources.files("rsc.data").joinpath("samples", BUNDLED[symbol]).read_text()
    return _with_symbol(pd.read_csv(io.StringIO(text)), symbol)


def load_file(uri: str, symbol: str, storage: Storage) -> pd.DataFrame:
    """One symbol from a CSV or Parquet file; the format follows the extension."""
    data = storage.read_bytes(uri)
    if uri.endswith(".parquet"):
        frame = pd.read_parquet(io.BytesIO(data))
    else:
        try:
            frame = pd.read_csv(io.BytesIO(data))
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise ValueError(f"{uri}: not a readable CSV file: {error}") from error
    return _with_symbol(frame, symbol)


def _with_symbol(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    frame = frame.copy()
    frame[SYMBOL] = symbol
    return frame


def load_bars(settings: DataSettings, storage: Storage) -> dict[str, pd.DataFrame]:
    """Raw (unvalidated) bars per symbol as the source gave them."""
    frames = {}
    for symbol in settings.symbols:
        if settings.source == "bundled":
            frames[symbol] = load_bundled(symbol)
        else:
            if not settings.path:
                raise ValueError(f"data.path is required for data.source={settings.source!r}")
            uri = settings.path.replace("{symbol}", symbol)
            frames[symbol] = load_file(uri, symbol, storage)
    return frames


def clip_dates(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Rows with ``start <= timestamp <= end`` (dates inclusive), in the canonical column order."""
    stamps = frame[TIMESTAMP]
    keep = (stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(end) + pd.Timedelta(days=1))
    return frame.loc[keep, [TIMESTAMP, SYMBOL, *BAR_COLUMNS[1:]]].reset_index(drop=True)
