"""Data-quality checks: bars that are valid but flatter or mislead a backtest, reported as warnings.

:mod:`rsc.data.validate` refuses bars that are wrong (a NaN, a high below the close). The checks here
find bars that are well formed yet suspicious, and by default only warn (``data.validation.quality``:
``warn``, ``fail`` or ``off``):

- **stale opens**: the open equals the previous close on more than ``stale_open_share`` of a calendar
  year's bars. Such an "open" is the last close copied forward (the S&P 500 sample has 95-98% of them
  in 1999-2005), so a ``next_open`` fill is really a fill at the close the policy saw.
- **zero-volume runs**: ``zero_volume_run`` or more bars in a row without a trade.
- **price jumps**: a close-to-close move beyond ``jump_sigma`` robust standard deviations (median
  absolute deviation x 1.4826); one near a usual split ratio is named as a likely unadjusted split.
- **missing sessions**: more than ``max_missing_sessions`` consecutive sessions absent against the
  calendar the bars imply (weekdays for daily or intraday bars without weekends, every day for a 24/7
  market, the median spacing for weekly or monthly bars). A session is a calendar day with bars, so
  an intraday file is judged by its missing days, not by a short holiday session.

Each finding names the symbol, the first date and how many bars or years it covers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rsc.config.settings import ValidationSettings

# Ratios an unadjusted split (or reverse split) leaves between two closes.
_SPLIT_RATIOS = (2.0, 3.0, 4.0, 5.0, 1.5, 10.0)
_DAY_NS = 86_400 * 10**9

Note = Callable[[str, str, np.ndarray], None]  # (check, message, bad rows) -> record a warning


def check_quality(
    stamps: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    settings: ValidationSettings,
    note: Note,
) -> None:
    """Run every quality check over one symbol's validated bars (``datetime64[ns]`` stamps sorted,
    float prices), calling ``note``."""
    if settings.quality == "off" or len(stamps) < 2:
        return
    # Close-only bars (a file without opens or volume) have neither stale opens nor idle runs to find:
    # ingest reports them as close-only once, and refuses settings they cannot honour.
    if not (open_ == close).all():
        stale_opens(stamps, open_, close, settings.stale_open_share, note)
    if volume.any():
        zero_volume_runs(volume, settings.zero_volume_run, note)
    price_jumps(close, settings.jump_sigma, note)
    missing_sessions(stamps, settings.max_missing_sessions, note)


def stale_opens(stamps: np.ndarray, open_: np.ndarray, close: np.ndarray, share: float, note: Note) -> None:
    stale = np.zeros(len(open_), dtype=bool)
    stale[1:] = np.abs(open_[1:] - close[:-1]) <= 1e-9 * np.abs(close[:-1])  # equal but for rounding
    years = _years(stamps)
    bar_years = years[1:]
    held, _ = _sorted_unique(bar_years)
    index = np.cumsum(np.r_[0, bar_years[1:] != bar_years[:-1]])  # each bar's year, as in a groupby
    by_year = np.bincount(index, weights=stale[1:]) / np.bincount(index)
    flagged = by_year > share
    if not flagged.any():
        return
    shares = ", ".join(
        f"{year} {value:.0%}" for year, value in zip(held[flagged], by_year[flagged], strict=True)
    )
    note(
        "stale_opens",
        f"the open equals the previous close on more than {share:.0%} of bars in "
        f"{int(flagged.sum())} year(s) "
        f"({shares}): a next-open fill there is a fill at the close the policy saw; "
        "fill at the next close (env.fill=next_close) or charge a spread (env.spread_factor)",
        stale & np.isin(years, held[flagged]),
    )


def zero_volume_runs(volume: np.ndarray, min_run: int, note: Note) -> None:
    zero = volume == 0
    starts, lengths = _runs(zero)
    long = lengths >= min_run
    if not long.any():
        return
    bad = np.zeros(len(volume), dtype=bool)
    for start, length in zip(starts[long], lengths[long], strict=True):
        bad[start : start + length] = True
    note(
        "zero_volume",
        f"{int(long.sum())} run(s) of {min_run} or more bars with zero volume (longest {lengths.max()} "
        "bars): prices there may be quotes carried forward, not trades",
        bad,
    )


def price_jumps(close: np.ndarray, sigmas: float, note: Note) -> None:
    moves = np.diff(np.log(close))
    spread = 1.4826 * np.median(np.abs(moves - np.median(moves)))
    if not spread > 0:
        return
    size = np.abs(moves) / spread
    jumps = size > sigmas
    if not jumps.any():
        return
    first = int(np.flatnonzero(jumps)[0])
    ratio = close[first] / close[first + 1]
    split = next((r for r in _SPLIT_RATIOS for x in (r, 1 / r) if abs(ratio / x - 1) < 0.03), None)
    what = (
        f"looks like an unadjusted {split:g}:1 split or reverse split; use adjusted prices"
        if split
        else "check it against a split, a bad print or a symbol change"
    )
    bad = np.zeros(len(close), dtype=bool)
    bad[1:] = jumps
    note(
        "jumps",
        f"close-to-close move of {moves[first]:+.1%} ({size[first]:.0f} robust sigma, limit {sigmas:g}): "
        f"{what}",
        bad,
    )


def missing_sessions(stamps: np.ndarray, most: int, note: Note) -> None:
    """Runs of more than ``most`` sessions missing against the calendar the bars imply."""
    deltas = np.diff(stamps).astype(np.int64)
    if not len(deltas) or (deltas <= 0).any():
        return
    if np.median(deltas) <= _DAY_NS:  # daily or intraday: count whole sessions (days with bars)
        days, first_bar = _sorted_unique(stamps.astype("datetime64[D]"))
        weekday = (days.astype(np.int64) + 3) % 7  # Monday 0: 1970-01-01 was a Thursday
        weekends = (weekday >= 5).mean()
        if weekends < 0.01:  # a weekday calendar: a holiday is one missing weekday
            missing = np.busday_count(days[:-1], days[1:]) - 1
            unit = "weekday sessions"
        else:  # a market that trades every day
            missing = (days[1:] - days[:-1]).astype(np.int64) - 1
            unit = "daily sessions"
        rows = first_bar[1:]  # the first bar after each gap
    else:  # weekly, monthly: bars missing at the usual spacing (rounding absorbs month lengths)
        missing = np.rint(deltas / np.median(deltas)).astype(np.int64) - 1
        unit, rows = "bars", np.arange(1, len(stamps))
    gaps = missing > most
    if not gaps.any():
        return
    bad = np.zeros(len(stamps), dtype=bool)
    bad[rows[gaps]] = True
    note(
        "missing_sessions",
        f"{int(gaps.sum())} gap(s) of more than {most} {unit} without bars (largest {int(missing.max())} "
        "missing, up to this bar)",
        bad,
    )


def _years(stamps: np.ndarray) -> np.ndarray:
    """Each sorted stamp's calendar year, from where each year starts (the calendar conversion of
    every stamp costs several times as much)."""
    first, last = stamps[[0, -1]].astype("datetime64[Y]").astype(np.int64)
    held = np.arange(first, last + 1)  # years since 1970
    starts = np.searchsorted(stamps, held.astype("datetime64[Y]").astype(stamps.dtype))
    return np.repeat(held + 1970, np.diff(np.r_[starts, len(stamps)]))


def _sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_index=True)`` of values already sorted, without sorting them again."""
    first = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[first], first


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of True in ``flags``."""
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[::2], edges[1::2]
    return starts, ends - starts
