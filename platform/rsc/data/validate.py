"""OHLCV validation: one clear finding per problem, naming the source, the symbol, the row and its timestamp.

Checks run in a fixed order. Structural problems (empty input, missing columns, mixed or missing time
zones) always fail. Every other check follows its policy in :class:`ValidationSettings`: ``fail``
(the default) or ``repair`` (drop, sort or forward-fill, logged with a count). Rows a failed check
flags are set aside, so each bad row is reported once and the later checks still run on the rest.

Time zones: a timestamp column is either all naive or all zone-aware (a mix is an error). Naive
stamps are accepted for daily bars only (every stamp at midnight: a calendar date); naive intraday
stamps are an error because their instant is ambiguous. Zone-aware daily bars (all at local
midnight, as pandas writes them) keep their local date; zone-aware intraday bars are converted to
UTC. Stored timestamps are naive ``datetime64[ns]``: dates for daily bars, UTC for intraday ones.
Row numbers are 0-based data rows of the source (a CSV's line number is the row + 2).

Bars that pass go through the data-quality checks of :mod:`rsc.data.quality` (warnings by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rsc.config.settings import ValidationSettings
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
from rsc.data.quality import check_quality

log = logging.getLogger(__name__)

# A trailing UTC designator or offset: "Z", "+00:00", "-0500".
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2})$"


class DataValidationError(ValueError):
    """Bad bars; the message says what, where and in which row."""


@dataclass(frozen=True)
class Finding:
    """One problem found by one check."""

    check: str
    source: str
    symbol: str
    message: str
    rows: int = 0  # rows affected (0: the whole input)
    row: int | None = None  # first affected row
    timestamp: str | None = None  # its timestamp as the source wrote it
    repaired: bool = False
    warning: bool = False  # a data-quality finding under ``quality: warn``: reported, not refused

    def __str__(self) -> str:
        where = f"{self.source} [{self.symbol}]"
        if self.row is not None:
            where += f" row {self.row} ({self.timestamp})"
        more = f" ({self.rows} rows)" if self.rows > 1 else ""
        return f"{where}: {self.message}{more}"


@dataclass
class ValidationReport:
    source: str
    symbol: str
    rows_in: int
    rows_out: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not (f.repaired or f.warning)]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.warning]

    @property
    def repairs(self) -> list[Finding]:
        return [f for f in self.findings if f.repaired]

    @property
    def ok(self) -> bool:
        return not self.failures


class _Checker:
    """Runs the checks over one symbol's frame, keeping the source's row numbers for the findings."""

    def __init__(
        self, frame: pd.DataFrame, source: str, symbol: str, policy: ValidationSettings, quality: bool = True
    ):
        self.source, self.symbol, self.policy, self.quality = source, symbol, policy, quality
        index = frame.index
        self.source_rows = index.to_numpy() if pd.api.types.is_integer_dtype(index) else np.arange(len(frame))
        self.source_stamps = frame[TIMESTAMP] if TIMESTAMP in frame.columns else None
        self.work = frame.reset_index(drop=True)
        self.pos = np.arange(len(frame))  # each working row's position in the input
        self.report = ValidationReport(source, symbol, rows_in=len(frame))

    def note(
        self,
        check: str,
        message: str | Callable[[int], str],
        bad: np.ndarray | None = None,
        repaired: bool = False,
        warning: bool = False,
    ) -> None:
        """Record a finding; ``message`` may be built from the position of the first bad row."""
        if bad is None:
            self.report.findings.append(Finding(check, self.source, self.symbol, str(message)))
            return
        first = int(np.flatnonzero(bad)[0])
        source_pos = self.pos[first]
        stamp = "?" if self.source_stamps is None else _as_written(self.source_stamps.iloc[source_pos])
        self.report.findings.append(
            Finding(
                check,
                self.source,
                self.symbol,
                message(first) if callable(message) else message,
                rows=int(bad.sum()),
                row=int(self.source_rows[source_pos]),
                timestamp=stamp,
                repaired=repaired,
                warning=warning,
            )
        )

    def keep(self, mask: np.ndarray) -> None:
        self.work = self.work.loc[mask].reset_index(drop=True)
        self.pos = self.pos[mask]

    def rows_check(
        self,
        check: str,
        bad: np.ndarray,
        message: str | Callable[[int], str],
        repair: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        """Report ``bad`` rows; repair them by the check's policy, else set them aside."""
        if not bad.any():
            return
        repaired = getattr(self.policy, check) == "repair"
        self.note(check, message, bad, repaired)
        if repaired and repair is not None:
            repair(bad)
        else:
            self.keep(~bad)

    def run(self) -> pd.DataFrame | None:
        frame = self.work
        if frame.empty:
            self.note("empty", "no bars (empty input)")
            return None
        missing = [c for c in BAR_COLUMNS if c not in frame.columns]
        if missing:
            self.note(
                "columns",
                f"missing column(s) {missing}; expected {list(BAR_COLUMNS)} (map the file's own names "
                "with data.columns, or data.layout=wide for one close column per symbol)",
            )
            return None
        if not self.timestamps():
            return None
        self.order_and_duplicates()
        self.values()
        self.bar_shape()
        if self.work.empty and self.report.ok:
            self.note("empty", "no bars left after repairs")
        elif self.report.ok and self.quality:
            self.check_quality()
        self.report.rows_out = len(self.work)
        return self.work

    def check_quality(self) -> None:
        warn = self.policy.quality == "warn"
        work = self.work
        check_quality(
            work[TIMESTAMP].to_numpy("datetime64[ns]"),
            *(work[name].to_numpy(np.float64) for name in (OPEN, CLOSE, VOLUME)),
            self.policy,
            lambda c, m, bad: self.note(c, m, bad, warning=warn),
        )

    # -- timestamps ---------------------------------------------------------------------------------
    def timestamps(self) -> bool:
        """Parse the timestamps; False when a zone problem makes every later check meaningless."""
        raw = self.work[TIMESTAMP]
        parsed = None
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            aware, text = np.ones(len(raw), dtype=bool), None
        elif pd.api.types.is_datetime64_dtype(raw.dtype):
            aware, text = np.zeros(len(raw), dtype=bool), None
        else:
            text = raw.astype("string").str.strip()
            aware, parsed = _zone_flags(text)
        if aware.any() and not aware.all():
            differs = aware != aware[0]
            kind = "zone-aware" if aware[np.flatnonzero(differs)[0]] else "naive"
            first = "zone-aware" if aware[0] else "naive"
            self.note(
                "timezone",
                f"mixed time zones: this stamp is {kind} while row {self.source_rows[0]} is {first}; "
                "a file's timestamps must all carry a zone or all be naive",
                differs,
            )
            return False
        if parsed is not None and not aware.any():
            stamps = local = parsed  # naive ISO stamps: the first parse is the answer
        else:
            stamps, local = _parse(raw if text is None else text, bool(aware.all()))
        bad = stamps.isna().to_numpy()
        self.rows_check("timestamps", bad, "missing or unparseable timestamp")
        stamps, local = stamps.to_numpy()[~bad], local.to_numpy()[~bad]
        midnight = local.astype("datetime64[ns]").view(np.int64) % (86_400 * 10**9) == 0
        if aware.all() and midnight.all():
            stamps = local  # daily bars: keep the exchange's calendar date
        elif not aware.all() and not midnight.all():
            self.note(
                "timezone",
                "intraday timestamp without a time zone; daily bars may be naive dates, "
                "intraday bars must carry a zone (e.g. +00:00) or take one from the settings "
                "(data.timezone=UTC, or the zone the file was written in)",
                ~midnight,
            )
            return False
        self.work[TIMESTAMP] = stamps.astype("datetime64[ns]")
        return True

    def order_and_duplicates(self) -> None:
        stamps = self.work[TIMESTAMP].to_numpy()
        if len(stamps) > 1 and (stamps[1:] < stamps[:-1]).all():
            # Newest first, as many sites export history: one order, read backwards; nothing guessed.
            self.note("order", "rows newest first: read oldest first", np.ones(len(stamps), bool), True)
            self.work, self.pos = self.work.iloc[::-1].reset_index(drop=True), self.pos[::-1]
            return
        earlier = np.zeros(len(stamps), dtype=bool)
        earlier[1:] = stamps[1:] < np.maximum.accumulate(stamps)[:-1]

        def sort(_: np.ndarray) -> None:
            order = np.argsort(self.work[TIMESTAMP].to_numpy(), kind="stable")
            self.work = self.work.iloc[order].reset_index(drop=True)
            self.pos = self.pos[order]

        if earlier.any():
            self.rows_check(
                "order", earlier, "timestamp earlier than a previous row (not sorted ascending)", sort
            )
        repeated = self.work[TIMESTAMP].duplicated(keep="first").to_numpy()
        self.rows_check("duplicates", repeated, "duplicate timestamp")

    # -- values -------------------------------------------------------------------------------------
    def values(self) -> None:
        for column in OHLCV_COLUMNS:
            original = self.work[column]
            if pd.api.types.is_numeric_dtype(original.dtype) and not pd.api.types.is_bool_dtype(
                original.dtype
            ):
                self.work[column] = original.astype(np.float64)
                continue
            values = pd.to_numeric(original, errors="coerce")
            text = original.astype("string").str.strip()
            bad = (values.isna() & original.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)
            shown = original.to_numpy()
            self.work[column] = values.astype(np.float64)
            self.rows_check("numeric", bad, lambda i, c=column, v=shown: f"non-numeric {c} {v[i]!r}")
        bad = {c: ~np.isfinite(self.work[c].to_numpy(dtype=np.float64)) for c in OHLCV_COLUMNS}
        repair = self.policy.finite == "repair"
        for column, mask in bad.items():
            if mask.any():
                values = self.work[column].to_numpy()
                self.note(
                    "finite",
                    f"{column} is {values[np.flatnonzero(mask)[0]]} (NaN, empty or inf)",
                    mask,
                    repair,
                )
        any_bad = np.logical_or.reduce(list(bad.values()))
        if not any_bad.any():
            return
        if not repair:
            self.keep(~any_bad)
            return
        # A bar with a missing price becomes a flat bar at the last close (so the bar stays a valid
        # bar); a missing volume takes the last volume. Rows with nothing before them are dropped.
        price_bad = np.logical_or.reduce([bad[c] for c in PRICE_COLUMNS])
        last_close = self.work[CLOSE].where(~price_bad).ffill()
        for column in PRICE_COLUMNS:
            self.work[column] = self.work[column].where(~price_bad, last_close)
        self.work[VOLUME] = self.work[VOLUME].where(~bad[VOLUME]).ffill()
        self.keep(self.work[[*PRICE_COLUMNS, VOLUME]].notna().all(axis=1).to_numpy())

    def bar_shape(self) -> None:
        def arrays() -> dict[str, np.ndarray]:
            return {c: self.work[c].to_numpy(dtype=np.float64) for c in OHLCV_COLUMNS}

        a = arrays()
        self.rows_check(
            "positive", np.logical_or.reduce([a[c] <= 0 for c in PRICE_COLUMNS]), "non-positive price"
        )
        a = arrays()
        self.rows_check("high", a[HIGH] < np.maximum(a[OPEN], a[CLOSE]), "high below max(open, close)")
        a = arrays()
        self.rows_check("low", a[LOW] > np.minimum(a[OPEN], a[CLOSE]), "low above min(open, close)")
        self.rows_check("volume", arrays()[VOLUME] < 0, "negative volume")


def _as_written(stamp: object) -> str:
    """A stamp as a file writes it: a date alone for a naive midnight (the reader may have parsed it)."""
    if isinstance(stamp, pd.Timestamp) and stamp.tz is None and stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return str(stamp)


def _zone_flags(text: pd.Series) -> tuple[np.ndarray, pd.Series | None]:
    """Which stamps carry a zone, and the parsed stamps when that one parse settles it.

    One ISO 8601 parse decides for a uniform column; mixed zones or offsets (or another format)
    fall back to a regex per stamp.
    """
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if parsed.notna().any():
            return np.full(len(text), parsed.dt.tz is not None), parsed
    except ValueError:  # mixed zones or offsets: look at each stamp
        pass
    return text.str.contains(_ZONE, regex=True).fillna(False).to_numpy(dtype=bool), None


def _parse(values: pd.Series, aware: bool) -> tuple[pd.Series, pd.Series]:
    """(stamps as naive UTC or naive as given, the local wall-clock stamps); NaT where unparseable."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values
    else:
        stamps = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=aware)
        if stamps.isna().all():  # not ISO 8601: let pandas infer the format from the first stamp
            stamps = pd.to_datetime(values, errors="coerce", utc=aware)
    if not aware:
        return stamps, stamps
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        local = values.dt.tz_localize(None)
    else:
        local = pd.to_datetime(values.str.replace(_ZONE, "", regex=True), errors="coerce", format="ISO8601")
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None), local


def check_bars(
    frame: pd.DataFrame,
    source: str,
    symbol: str,
    policy: ValidationSettings | None = None,
    quality: bool = True,
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Run every check; returns the typed bars (None if a structural check failed) and the report.

    Args:
        frame: one symbol's raw bars; an integer index is taken as the source's row numbers.
        source: the file or URL named in findings.
        quality: also run the data-quality checks (``rsc.data.quality``) on the bars that pass.
    """
    policy = policy or ValidationSettings()
    bars = _clean(frame)
    if bars is None:  # something to report or repair: the checks one by one, with the rows named
        checker = _Checker(frame, source, symbol, policy, quality)
        return checker.run(), checker.report
    report = ValidationReport(source, symbol, rows_in=len(frame), rows_out=len(bars))
    if quality:  # findings name the source's rows
        report.findings += check_quality_of(bars.set_axis(frame.index), source, symbol, policy).findings
    return bars, report


_DAY_NS = 86_400 * 10**9


def _clean(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The typed bars when every check would pass with nothing to report, else None.

    The common case, decided by :func:`passes_every_check`: typed stamps (dates, or UTC instants) and
    numeric OHLCV. Anything else goes through :class:`_Checker`, which finds and words each problem.
    """
    if frame.empty or any(c not in frame.columns for c in BAR_COLUMNS):
        return None
    given = {name: frame[name] for name in BAR_COLUMNS}
    raw = given[TIMESTAMP]
    aware = isinstance(raw.dtype, pd.DatetimeTZDtype)
    if aware:
        if str(raw.dtype.tz) != "UTC":  # a local zone: daily bars keep their local date
            return None
        raw = raw.dt.tz_localize(None)
    elif raw.dtype.kind != "M":
        return None
    columns: dict[str, np.ndarray] = {TIMESTAMP: raw.to_numpy("datetime64[ns]")}
    for name in OHLCV_COLUMNS:
        kind = given[name].dtype
        if not isinstance(kind, np.dtype) or kind.kind not in "fiu":  # text, bool or nullable: checked
            return None
        columns[name] = given[name].to_numpy(np.float64)
    if not passes_every_check(columns[TIMESTAMP], columns, instants=aware):
        return None
    return pd.DataFrame({n: columns[n] if n in columns else frame[n].to_numpy() for n in frame.columns})


def passes_every_check(stamps: np.ndarray, prices: Mapping[str, np.ndarray], instants: bool) -> bool:
    """True when typed bars have nothing to report: stamps strictly ascending (no NaT), finite
    positive prices that form a bar, volume >= 0; naive stamps (``instants`` False) must be dates,
    since a naive time of day is an instant only a zone can place.

    A few vectorised passes over whole columns, for the common case; bars that fail go through the
    check-by-check pass, which names each problem.
    """
    ns = stamps.view(np.int64)
    if np.isnat(stamps).any() or not (ns[1:] > ns[:-1]).all():
        return False
    if not instants and not (ns % _DAY_NS == 0).all():
        return False
    o, h, low, c, v = (prices[name] for name in (OPEN, HIGH, LOW, CLOSE, VOLUME))
    with np.errstate(invalid="ignore"):
        return bool(
            np.isfinite(v).all()
            and (v >= 0).all()
            and (np.minimum(np.minimum(o, c), low) > 0).all()  # False for a NaN or inf price too
            and (h >= np.maximum(o, c)).all()
            and (low <= np.minimum(o, c)).all()
            and np.isfinite(h).all()
        )


def check_quality_of(
    bars: pd.DataFrame, source: str, symbol: str, policy: ValidationSettings
) -> ValidationReport:
    """Only the data-quality checks, over bars :func:`check_bars` accepted (e.g. clipped to dates); an
    integer index is taken as the source's row numbers."""
    index = bars.index
    rows = index.to_numpy() if pd.api.types.is_integer_dtype(index) else np.arange(len(bars))
    prices = {name: bars[name].to_numpy(np.float64) for name in (OPEN, CLOSE, VOLUME)}
    return quality_report(bars[TIMESTAMP].to_numpy("datetime64[ns]"), prices, source, symbol, policy, rows)


def quality_report(
    stamps: np.ndarray,
    prices: Mapping[str, np.ndarray],
    source: str,
    symbol: str,
    policy: ValidationSettings,
    rows: np.ndarray,
) -> ValidationReport:
    """The data-quality checks over one symbol's accepted bars as arrays (``rows``: each bar's row in
    the source, named in findings)."""
    report = ValidationReport(source, symbol, rows_in=len(stamps), rows_out=len(stamps))
    warning = policy.quality == "warn"

    def note(check: str, message: str, bad: np.ndarray) -> None:
        first = int(np.flatnonzero(bad)[0])
        stamp = _as_written(pd.Timestamp(stamps[first]))
        report.findings.append(
            Finding(check, source, symbol, message, int(bad.sum()), int(rows[first]), stamp, warning=warning)
        )

    check_quality(stamps, prices[OPEN], prices[CLOSE], prices[VOLUME], policy, note)
    return report


def validate_bars(
    frame: pd.DataFrame, source: str, symbol: str, policy: ValidationSettings | None = None
) -> pd.DataFrame:
    """Checked, typed bars (naive ``datetime64[ns]`` timestamps, float64 OHLCV); repairs are logged.

    Raises:
        DataValidationError: naming the first problem (and how many more there are).
    """
    return accept(*check_bars(frame, source, symbol, policy))


def accept(bars: pd.DataFrame | None, report: ValidationReport) -> pd.DataFrame:
    """The bars of a report without failures, its repairs and warnings logged (see :func:`validate_bars`).

    Raises:
        DataValidationError: naming the first problem (and how many more there are).
    """
    settle(report)
    assert bars is not None
    return bars


def _repair_hint(check: str) -> str:
    """What the setting that repairs ``check`` would do, from its description ('' for no such setting)."""
    setting = ValidationSettings.model_fields.get(check)
    described = setting.description if setting is not None else None
    if not described or "repair: " not in described:
        return ""
    return f"; data.validation.{check}=repair would {described.split('repair: ', 1)[1].rstrip('.')}"


def settle(report: ValidationReport) -> None:
    """Refuse a report with failures; log its repairs and warnings.

    Raises:
        DataValidationError: naming the first problem (and how many more there are).
    """
    if report.failures:
        first, others = report.failures[0], len(report.failures) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        # No hint where the repair would leave nothing: every row has the problem.
        hint = _repair_hint(first.check) if 0 < first.rows < report.rows_in else ""
        raise DataValidationError(f"{first}{more}{hint}")
    for finding in report.repairs:
        log.warning("repaired %d row(s): %s", finding.rows, finding)
    for finding in report.warnings:
        log.warning("data quality: %s", finding)
