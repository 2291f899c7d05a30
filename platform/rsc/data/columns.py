"""Files as people export them -> the bar schema: column names, adjusted prices, dates, zones, layouts.

Every file source hands its frame to :func:`to_bar_columns` before validation. Nothing is guessed
silently: a column is matched by its name (case and punctuation ignored, with the usual synonyms), an
explicit ``data.columns`` map wins, and whatever could be read two ways (two timestamp columns, dates
that could be month-first or day-first, epoch numbers of an unknown unit) is an error naming the file and
the settings that decide it. :func:`describe` says what the loader did, for ``rsc data inspect``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rsc.core.schema import BAR_COLUMNS, CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP, VOLUME
from rsc.data.raw import SourceError
from rsc.data.validate import passes_every_check

log = logging.getLogger(__name__)

ADJ_CLOSE = "adj_close"
# Canonical column -> the names it goes by (compared lower-case, without spaces, dots, _, -, / or <>).
SYNONYMS: dict[str, tuple[str, ...]] = {
    TIMESTAMP: ("timestamp", "date", "datetime", "time", "gmttime", "localtime", "dateutc", "ts"),
    OPEN: ("open", "o", "openprice"),
    HIGH: ("high", "h", "highprice"),
    LOW: ("low", "l", "lowprice"),
    CLOSE: ("close", "c", "last", "closeprice", "price"),
    ADJ_CLOSE: ("adjclose", "adjustedclose", "closeadjusted"),
    VOLUME: ("volume", "vol", "v", "tickvolume"),
    SYMBOL: ("symbol", "ticker", "instrument"),
}
_UNNAMED_INDEX = re.compile(r"^(unnamed: ?0|index|)$", re.IGNORECASE)  # pandas' to_csv index column
_SLASHED_DATE = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})[/.-](\d{2,4})(?:[ T].*)?$")
# 2020.01.02 or 2020/01/02 (MetaTrader), with a plain time of day or none; anything more is parsed as before
_YEAR_FIRST_DATE = re.compile(r"^\s*\d{4}([/.])\d{1,2}\1\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*$")
_CLOCK = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")  # a time of day
_ZONE_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"  # a stamp that carries its own zone
DAY_FIRST, MONTH_FIRST = "%d/%m/%Y", "%m/%d/%Y"
_ADJUSTED = "adjusted prices: open, high, low and close scaled by adj_close / close"
EPOCH_UNITS = (("s", 1e8, 1e10), ("ms", 1e11, 1e13), ("us", 1e14, 1e16), ("ns", 1e17, 1e19))


@dataclass(frozen=True)
class FileFormat:
    """How to read a file's columns (the ``data`` settings of the same names)."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> the file's column
    price: str = "close"  # "close" or "adj_close"
    layout: str = "long"  # "long" (OHLCV columns) or "wide" (one close column per symbol)
    date_format: str | None = None
    timezone: str | None = None


@dataclass
class Reading:
    """What :func:`to_bar_columns` did to one file, in words (``rsc data inspect``)."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> the file's column
    timestamps: str = ""
    notes: list[str] = field(default_factory=list)


def _key(name: object) -> str:
    return re.sub(r"[\s._\-/()<>]", "", str(name)).lower()


def match_columns(columns: Sequence[Any], origin: str, fmt: FileFormat) -> dict[str, Any]:
    """canonical -> file column (of the file's ``columns``); explicit ``data.columns`` first, then
    names and synonyms."""
    known = set(SYNONYMS)
    unknown = sorted(set(fmt.columns) - known)
    if unknown:
        raise SourceError(f"data.columns names unknown bar column(s) {unknown}; known: {sorted(known)}")
    given = list(columns)
    missing = {canon: col for canon, col in fmt.columns.items() if col not in given}
    if missing:
        raise SourceError(
            f"{origin}: data.columns maps {missing}, but the file has no such column(s); "
            f"its columns: {list(map(str, given))}"
        )
    found = dict(fmt.columns)
    taken = set(found.values())
    keys = {col: _key(col) for col in given}
    for canon, names in SYNONYMS.items():
        if canon in found:
            continue
        hits = [col for col in given if col not in taken and keys[col] in names]
        if len(hits) > 1:
            raise SourceError(
                f"{origin}: columns {list(map(str, hits))} could each be the {canon!r}: set "
                f"data.columns.{canon} to the one to use"
            )
        if hits:
            found[canon] = hits[0]
            taken.add(hits[0])
    first = given[0] if given else None
    if TIMESTAMP not in found and first is not None and _UNNAMED_INDEX.match(str(first)):
        found[TIMESTAMP] = first  # a pandas export: the timestamp was the unnamed index
    return found


def _slashed_order(text: pd.Series, origin: str) -> str | None:
    """``%d/%m/%Y`` or ``%m/%d/%Y`` for slashed dates, decided by a field above 12; ``%Y.%m.%d`` for
    year-first ones with dots or slashes; None if not slashed."""
    if not len(text):
        return None
    if year_first := _YEAR_FIRST_DATE.match(str(text.iloc[0])):
        parts, clock = text.str.extract(_YEAR_FIRST_DATE), _clock(text)
        uniform = clock[0].notna().all() or clock[0].isna().all()
        if parts[0].isna().any() or parts[0].nunique() != 1 or not uniform:
            return None  # not every stamp written alike
        separator = year_first.group(1)
        return f"%Y{separator}%m{separator}%d" + _clock_format(clock)
    if not _SLASHED_DATE.match(str(text.iloc[0])):
        return None  # the first stamp decides it without a regex over every row
    parts = text.str.extract(_SLASHED_DATE)
    if parts.empty or parts[0].isna().any() or parts[1].nunique() != 1:
        return None
    separator = parts[1].iloc[0]
    first, second = parts[0].astype(int).to_numpy(), parts[2].astype(int).to_numpy()
    day_first, month_first = (first > 12).any(), (second > 12).any()
    if day_first and month_first:
        row_a, row_b = int(np.argmax(first > 12)), int(np.argmax(second > 12))
        raise SourceError(
            f"{origin}: dates are day-first in row {row_a} ({text.iloc[row_a]}) but month-first in row "
            f"{row_b} ({text.iloc[row_b]}): set data.date_format"
        )
    if not (day_first or month_first):
        rows = ", ".join(f"row {i} ({text.iloc[i]})" for i in range(min(3, len(text))))
        raise SourceError(
            f"{origin}: dates such as {rows} read as month-first or day-first alike (no day above 12): "
            f'set data.date_format: "{MONTH_FIRST}" or "{DAY_FIRST}"'
        )
    year = "%Y" if parts[3].str.len().eq(4).all() else "%y"
    order = (DAY_FIRST if day_first else MONTH_FIRST).replace("%Y", year).replace("/", separator)
    return order + _clock_format(_clock(text))


def _clock(text: pd.Series) -> pd.DataFrame:
    """The time of day of stamps written ``<date>[ T]HH:MM[:SS]``, and its seconds (NaN where absent)."""
    return text.str.extract(r"^\S+[ T](\d{1,2}:\d{2}(:\d{2})?)")


def _clock_format(clock: pd.DataFrame) -> str:
    """The time-of-day part of a format for stamps whose clock is ``clock`` ('' for dates)."""
    if not clock[0].notna().all():
        return ""
    return " %H:%M:%S" if clock[1].notna().all() else " %H:%M"


def date_and_time_columns(columns: Sequence[Any], fmt: FileFormat) -> tuple[Any, Any] | None:
    """A ``Date`` and a ``Time`` column that together make the timestamp (as FX and MetaTrader exports
    write bars), unless ``data.columns`` names the timestamp."""
    if TIMESTAMP in fmt.columns:
        return None
    dates = [c for c in columns if _key(c) == "date"]
    times = [c for c in columns if _key(c) == "time"]
    return (dates[0], times[0]) if len(dates) == len(times) == 1 else None


def _joined_date_and_time(frame: pd.DataFrame, fmt: FileFormat, reading: Reading) -> pd.DataFrame:
    """The frame with its date column holding date and time of day, its time column gone (when every
    time is a time of day; otherwise the column match names both columns and the setting to pick one)."""
    pair = date_and_time_columns(list(frame.columns), fmt)
    if pair is None:
        return frame
    date, time = pair
    times = frame[time].astype("string").str.strip()
    if not times.str.match(_CLOCK).fillna(False).all():
        return frame
    joined = frame[date].astype("string").str.strip() + " " + times
    reading.notes.append(f"date and time of day joined: {date} + {time}")
    return frame.assign(**{str(date): joined}).drop(columns=[time])


def _epoch(values: pd.Series, origin: str) -> tuple[pd.Series, str]:
    magnitude = float(np.nanmedian(np.abs(values.to_numpy(np.float64))))
    for unit, low, high in EPOCH_UNITS:
        if low <= magnitude < high:
            return pd.to_datetime(values, unit=unit, utc=True), f"epoch {unit} (UTC)"
    raise SourceError(
        f"{origin}: numeric timestamps of magnitude {magnitude:.3g} are not epoch seconds, milliseconds, "
        "microseconds or nanoseconds since 1970: store dates or set data.columns.timestamp"
    )


def _timestamps(raw: pd.Series, origin: str, fmt: FileFormat, reading: Reading) -> pd.Series:
    """Parsed when the file needs help (a format, an epoch, slashed dates, a zone); else as written."""
    numeric = pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)
    if numeric and not fmt.date_format:
        stamps, reading.timestamps = _epoch(raw, origin)
        return stamps
    if _is_datetime(raw):  # ISO 8601 stamps the reader parsed already
        reading.timestamps = "ISO 8601 text"
        return _in_zone(raw, origin, fmt, reading)
    text = raw.astype("string").str.strip()
    if numeric:  # 20200102 read as a number: the given format reads its digits
        text = text.str.removesuffix(".0")
    date_format = fmt.date_format or _slashed_order(text.dropna(), origin)
    if date_format is None:
        reading.timestamps = "ISO 8601 text"
        stamps = raw
    else:
        source = "data.date_format" if fmt.date_format else "detected"
        reading.timestamps = f"{date_format} ({source})"
        written = text if fmt.date_format else text.str.replace("T", " ", n=1)  # detected: "d/m/Y[ T]H:M"
        stamps = pd.to_datetime(written, format=date_format, errors="coerce")
        bad = stamps.isna() & text.notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise SourceError(
                f"{origin}: row {row} ({text.iloc[row]}) does not match the date format {date_format!r} "
                f"({int(bad.sum())} rows)"
            )
    if fmt.timezone and not _is_datetime(stamps) and text.str.contains(_ZONE_SUFFIX, regex=True).any():
        reading.notes.append(f"data.timezone={fmt.timezone} ignored: the stamps carry their own zone")
        return stamps
    if fmt.timezone and not _is_datetime(stamps):
        stamps = pd.to_datetime(stamps, errors="coerce")
    return _in_zone(stamps, origin, fmt, reading)


def _in_zone(stamps: pd.Series, origin: str, fmt: FileFormat, reading: Reading) -> pd.Series:
    """Naive intraday stamps placed in ``data.timezone`` (stamps with a zone and dates are kept)."""
    if not fmt.timezone or not _is_datetime(stamps):
        return stamps
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        reading.notes.append(f"data.timezone={fmt.timezone} ignored: the stamps carry their own zone")
        return stamps
    if (stamps.dropna().dt.normalize() == stamps.dropna()).all():
        return stamps  # daily bars are calendar dates: a zone would shift nothing
    try:
        stamps = stamps.dt.tz_localize(fmt.timezone, ambiguous="raise", nonexistent="raise")
    except Exception as error:  # pytz/zoneinfo errors name the instant
        raise SourceError(
            f"{origin}: naive stamps cannot be placed in data.timezone={fmt.timezone}: {error}"
        ) from error
    reading.timestamps += f", naive stamps in {fmt.timezone} (data.timezone)"
    return stamps


def _is_datetime(values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values.dtype)


def _adjust(frame: pd.DataFrame, origin: str, reading: Reading) -> pd.DataFrame:
    if ADJ_CLOSE not in frame.columns:
        raise SourceError(f"{origin}: data.price=adj_close, but the file has no adjusted-close column")
    factor = frame[ADJ_CLOSE].astype(float) / frame[CLOSE].astype(float)
    out = frame.copy()
    for column in (OPEN, HIGH, LOW, CLOSE):
        out[column] = out[column].astype(float) * factor
    reading.notes.append(_ADJUSTED)
    return out


def to_bar_columns(frame: pd.DataFrame, origin: str, fmt: FileFormat) -> tuple[pd.DataFrame, Reading]:
    """The frame with the bar schema's column names (and ``symbol`` when present), timestamps parsed
    where the file needs help; validation checks the rest. The index (file row numbers) is kept."""
    reading = Reading()
    if fmt.layout == "wide":
        return _from_wide(frame, origin, fmt, reading), reading
    frame = _joined_date_and_time(frame, fmt, reading)
    found = match_columns(frame.columns, origin, fmt)
    reading.columns = {canon: str(col) for canon, col in found.items()}
    wanted = [c for c in SYNONYMS if c in found]
    out = frame if list(frame.columns) == wanted else frame[[found[c] for c in wanted]]
    if list(out.columns) != wanted:
        out = out.set_axis(wanted, axis=1)
    if fmt.price == "adj_close":
        out = _adjust(out, origin, reading)
    if VOLUME not in out.columns and {OPEN, HIGH, LOW, CLOSE} <= set(out.columns):
        out = out.assign(**{VOLUME: 0.0})
        reading.notes.append("no volume column: volume set to 0")
        log.warning("%s: no volume column: volume set to 0 (volume indicators see none)", origin)
    if TIMESTAMP in out.columns:
        raw = out[TIMESTAMP]
        stamps = _timestamps(raw, origin, fmt, reading)
        if stamps is not raw:
            out = out.assign(**{TIMESTAMP: stamps})
    return out.drop(columns=[ADJ_CLOSE]) if ADJ_CLOSE in out.columns else out, reading


def clean_columns(
    table: pa.Table, origin: str, fmt: FileFormat
) -> tuple[np.ndarray, dict[str, np.ndarray], Reading] | None:
    """A file's bars as typed arrays (stamps, OHLCV) when the file needs no help and every check
    passes, else None: then :func:`to_bar_columns` and :mod:`rsc.data.validate` read it and name
    whatever is wrong.

    No help: the long layout, the bar columns found by name (adjusted prices when asked for), stamps
    the reader typed (dates, or UTC instants; see :func:`rsc.data.sources.read_csv_table`), numbers
    without gaps. Most exports are such files; this way they skip building a frame.
    """
    if fmt.layout != "long" or fmt.date_format or not table.num_rows:
        return None
    indexes = (table.schema.pandas_metadata or {}).get("index_columns", [])
    if any(isinstance(index, str) for index in indexes):
        return None  # a frame's index stored as a column: pandas reads it back as the index
    if date_and_time_columns(table.column_names, fmt) is not None:
        return None  # the loader joins them
    found = match_columns(table.column_names, origin, fmt)
    wanted = [*BAR_COLUMNS, *([ADJ_CLOSE] if fmt.price == "adj_close" else [])]
    if SYMBOL in found or any(name not in found for name in wanted):
        return None
    stamps = table.column(found[TIMESTAMP])
    if pa.types.is_date(stamps.type):
        stamps = stamps.cast(pa.timestamp("ns"))
    zone = getattr(stamps.type, "tz", "?")
    if not pa.types.is_timestamp(stamps.type) or zone not in (None, "UTC") or stamps.null_count:
        return None  # a local zone keeps its calendar date: the loader's own parse
    prices = {}
    for name in wanted[1:]:
        column = table.column(found[name])
        numbers = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if not numbers or column.null_count:
            return None
        prices[name] = column.to_numpy().astype(np.float64, copy=False)
    reading = Reading(columns={canon: str(col) for canon, col in found.items()}, timestamps="ISO 8601 text")
    if fmt.price == "adj_close":
        factor = prices.pop(ADJ_CLOSE) / prices[CLOSE]
        for name in (OPEN, HIGH, LOW, CLOSE):
            prices[name] = prices[name] * factor
        reading.notes.append(_ADJUSTED)
    times = stamps.cast(pa.timestamp("ns", zone)).to_numpy()
    if not passes_every_check(times, prices, instants=zone is not None):
        return None
    return times, prices, reading


def _from_wide(frame: pd.DataFrame, origin: str, fmt: FileFormat, reading: Reading) -> pd.DataFrame:
    """One close column per symbol -> long bars (open, high and low set to the close, volume 0)."""
    found = match_columns(frame.columns[:1], origin, FileFormat(columns={}))
    stamp = fmt.columns.get(TIMESTAMP) or found.get(TIMESTAMP)
    if stamp is None or stamp not in frame.columns:
        raise SourceError(f"{origin}: data.layout=wide needs a timestamp column first (or data.columns)")
    symbols = [c for c in frame.columns if c != stamp]
    if len(symbols) == 1 and _key(symbols[0]) in SYNONYMS[CLOSE] + SYNONYMS[ADJ_CLOSE]:
        return _one_close_series(frame, stamp, symbols[0], origin, fmt, reading)
    reading.columns = {TIMESTAMP: str(stamp), **{f"close of {s}": str(s) for s in symbols}}
    reading.notes.append(
        "wide layout: closes only; open, high and low are the close and volume is 0, so fill at the "
        "next close (env.fill=next_close) and leave the spread off"
    )
    stamps = _timestamps(frame[stamp], origin, fmt, reading)
    parts = []
    for symbol in symbols:
        part = _close_only_bars(stamps, frame[symbol])
        part[SYMBOL] = str(symbol)
        parts.append(part[part[CLOSE].notna()])
    return pd.concat(parts)


def _close_only_bars(stamps: pd.Series, column: pd.Series) -> pd.DataFrame:
    """Bars from a close alone: open, high and low are the close, volume 0 (the file's row index kept)."""
    close = pd.to_numeric(column, errors="coerce")
    return pd.DataFrame(
        {TIMESTAMP: stamps, OPEN: close, HIGH: close, LOW: close, CLOSE: close, VOLUME: 0.0},
        index=column.index,
    )


def _one_close_series(
    frame: pd.DataFrame, stamp: object, column: object, origin: str, fmt: FileFormat, reading: Reading
) -> pd.DataFrame:
    """A file with one close column (``Date,Close``): one symbol, named by the file or the settings."""
    reading.columns = {TIMESTAMP: str(stamp), CLOSE: str(column)}
    reading.notes.append("close-only bars: open, high and low are the close and volume is 0")
    return _close_only_bars(_timestamps(frame[stamp], origin, fmt, reading), frame[column])
