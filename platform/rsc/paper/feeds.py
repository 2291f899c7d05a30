"""Where the paper trader's bars come from: a replay of stored bars, or Yahoo polled at the bar interval.

A feed gives the history a decision looks back on (every bar up to the point the ledger reached),
then one :class:`Step` per new bar timestamp (the bars of every symbol stamped then), or ``None``
when a poll brought nothing new, so that the trader can notice stale data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
import requests

from rsc.config.settings import ValidationSettings, YahooSettings
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP, VOLUME
from rsc.data.sources import SourceError
from rsc.data.validate import DataValidationError, validate_bars
from rsc.data.yahoo import YahooSource
from rsc.paper.broker import Bar

log = logging.getLogger(__name__)

INTERVAL_S: dict[str, float] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "1d": 86_400,
    "1wk": 7 * 86_400,
    "1mo": 30 * 86_400,
}
# Live data: a missing price (Yahoo sends null for a bar it has not settled) becomes a flat bar.
# A live window is too short for the data-quality statistics; the ingested history had them.
LIVE_VALIDATION = ValidationSettings(finite="repair", duplicates="repair", order="repair", quality="off")

Wait = Callable[[float], Any]


class Step(NamedTuple):
    timestamp: pd.Timestamp
    bars: dict[str, Bar]
    age_s: float = 0.0  # seconds since the bar ended, when it was received (0 for a replay)


class Feed(Protocol):
    interval_s: float  # bar spacing
    live: bool  # live bars can be stale; a replay's never are

    def history(self, after: pd.Timestamp | None) -> pd.DataFrame:
        """Bars (all symbols, ``symbol`` column) a decision may look back on when trading resumes
        after ``after`` (None: a fresh start)."""
        ...

    def steps(self, after: pd.Timestamp | None, wait: Wait) -> Iterator[Step | None]:
        """New bars after ``after``, one step per timestamp; ``wait`` sleeps (interruptibly)."""
        ...


def to_steps(frame: pd.DataFrame, now: pd.Timestamp | None = None, interval_s: float = 0.0) -> list[Step]:
    """Bars frame -> steps in time order; ``age_s`` measured at ``now`` when given."""
    frame = frame.sort_values([TIMESTAMP, SYMBOL], kind="stable")
    stamps = frame[TIMESTAMP].to_numpy()
    symbols = frame[SYMBOL].astype(str).to_numpy()
    values = frame[[OPEN, HIGH, LOW, CLOSE, VOLUME]].to_numpy(np.float64).tolist()
    steps: list[Step] = []
    starts = np.flatnonzero(np.r_[True, stamps[1:] != stamps[:-1]]) if len(stamps) else []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(stamps)
        stamp = pd.Timestamp(stamps[start])
        age = (now - stamp).total_seconds() - interval_s if now is not None else 0.0
        steps.append(Step(stamp, {symbols[j]: Bar(*values[j]) for j in range(start, stop)}, max(age, 0.0)))
    return steps


def spacing_s(stamps: pd.Series) -> float:
    """Typical bar spacing (median gap), in seconds; one day when it cannot be told."""
    gaps = pd.Series(stamps.drop_duplicates().sort_values()).diff().dropna()
    return float(gaps.median().total_seconds()) if len(gaps) else 86_400.0


class ReplayFeed:
    """The last ``count`` timestamps of stored bars, at ``speed`` bars per second (0 = no waiting)."""

    live = False

    def __init__(self, bars: pd.DataFrame, count: int, speed: float = 0.0):
        self.bars = bars.sort_values([TIMESTAMP, SYMBOL], kind="stable", ignore_index=True)
        stamps = self.bars[TIMESTAMP].drop_duplicates()
        if len(stamps) < count:
            raise ValueError(f"replay of {count} bars, but the data holds only {len(stamps)} timestamps")
        self.first = stamps.iloc[-count]
        self.speed = speed
        self.interval_s = spacing_s(self.bars[TIMESTAMP])

    def history(self, after: pd.Timestamp | None) -> pd.DataFrame:
        stamps = self.bars[TIMESTAMP]
        seen = stamps < self.first if after is None else (stamps < self.first) | (stamps <= after)
        return self.bars[seen]

    def steps(self, after: pd.Timestamp | None, wait: Wait) -> Iterator[Step]:
        stamps = self.bars[TIMESTAMP]
        todo = (stamps >= self.first) if after is None else (stamps >= self.first) & (stamps > after)
        for i, step in enumerate(to_steps(self.bars[todo])):
            if i and self.speed:
                wait(1.0 / self.speed)
            yield step


REPOLL_OVERLAP_DAYS = 2  # a poll after the first reaches back this far before the last bar delivered


class LiveFeed:
    """Yahoo's chart endpoint polled every ``poll_s`` seconds; new complete bars only.

    A bar is complete once its interval has passed (a daily bar after its day); the still-forming bar
    Yahoo includes is left for a later poll. Each poll asks afresh (the response cache is off): the
    first for ``lookback_days`` of history, later ones only from a couple of days before the last bar
    delivered. A poll that fails (provider error, invalid bars) is logged and counts as a poll with
    nothing new; without history at the start the trader cannot begin.
    """

    live = True

    def __init__(
        self,
        settings: YahooSettings,
        symbols: tuple[str, ...],
        lookback_days: int,
        poll_s: float | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ):
        self.settings = settings.model_copy(update={"cache_ttl_s": 0.0})
        self.symbols, self.lookback_days, self.clock = symbols, lookback_days, clock
        self.interval_s = INTERVAL_S[settings.interval]
        self.poll_s = poll_s or self.interval_s
        self.session = session or requests.Session()
        self.sleep: Wait = time.sleep
        self._last: pd.Timestamp | None = None
        self._backlog: pd.DataFrame | None = None
        self.failures = 0

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp(self.clock(), unit="s")  # naive UTC, as validated intraday stamps are

    def poll(self) -> pd.DataFrame | None:
        """Complete bars of every symbol (over the lookback on the first poll, since shortly before the
        last bar delivered on later ones), or None when the poll failed."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        if self._last is None:
            first = today - timedelta(days=self.lookback_days)
        else:  # only what is new; steps() drops the overlap
            first = self._last.date() - timedelta(days=REPOLL_OVERLAP_DAYS)
        source = YahooSource(self.settings, first, today, session=self.session, sleep=self.sleep)
        frames = []
        try:
            for raw in source.fetch(self.symbols):
                if raw.frame.empty and self._last is not None:
                    continue  # no bar in the short window: a halt, a holiday on its exchange
                bars = validate_bars(raw.frame, raw.origin, raw.symbol, LIVE_VALIDATION)
                frames.append(bars.assign(**{SYMBOL: raw.symbol}))
        except (SourceError, DataValidationError) as error:
            self.failures += 1
            log.warning("live feed: poll failed: %s", error)
            return None
        if not frames:  # no symbol had a bar in the window
            return pd.DataFrame({TIMESTAMP: pd.Series(dtype="datetime64[ns]"), SYMBOL: pd.Series(dtype=str)})
        frame = pd.concat(frames, ignore_index=True)
        complete = frame[TIMESTAMP] + pd.Timedelta(seconds=self.interval_s) <= self._now()
        return frame[complete]

    def history(self, after: pd.Timestamp | None) -> pd.DataFrame:
        frame = self.poll()
        if frame is None or frame.empty:
            raise SourceError(f"live feed: no history for {list(self.symbols)} (see the warning above)")
        cut = after if after is not None else frame[TIMESTAMP].max()
        self._backlog = frame[frame[TIMESTAMP] > cut]  # bars missed while the trader was down
        self._last = cut
        return frame[frame[TIMESTAMP] <= cut]

    def steps(self, after: pd.Timestamp | None, wait: Wait) -> Iterator[Step | None]:
        if self._backlog is not None and not self._backlog.empty:
            yield from self._deliver(self._backlog)
        while True:
            wait(self.poll_s)
            frame = self.poll()
            if frame is not None and self._last is not None:
                frame = frame[frame[TIMESTAMP] > self._last]
            if frame is None or frame.empty:
                yield None
                continue
            yield from self._deliver(frame)

    def _deliver(self, frame: pd.DataFrame) -> Iterator[Step]:
        for step in to_steps(frame, self._now(), self.interval_s):
            self._last = step.timestamp
            yield step
