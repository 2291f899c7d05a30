"""Yahoo Finance bars through its chart endpoint (``/v8/finance/chart/{symbol}``), over ``requests``.

Polite by construction: requests are spaced by a rate limiter, a 429, a 5xx or a dropped connection
is retried with exponential backoff (``Retry-After`` wins when the host sends it), and responses are
kept in an on-disk cache so that a rerun within ``cache_ttl_s`` makes no request at all.

The response is ``{"chart": {"result": [{"meta": {..., "exchangeTimezoneName"}, "timestamp": [...],
"indicators": {"quote": [{"open", "high", "low", "close", "volume"}], "adjclose": [{"adjclose"}]}}],
"error": null}}``; an error comes as ``{"chart": {"result": null, "error": {"code", "description"}}}``.
Timestamps are epoch seconds; daily and longer bars become the exchange's calendar date (zone-aware
local midnight, which validation keeps as the date), intraday bars stay UTC instants. Missing values
(``null``) come through as NaN, for validation to fail on or repair.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import requests

from rsc.config.settings import YahooSettings
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, PRICE_COLUMNS, TIMESTAMP, VOLUME
from rsc.data.raw import ALL, RawBars, SourceError

log = logging.getLogger(__name__)

DAILY_OR_LONGER = {"1d", "1wk", "1mo"}
RETRY_STATUS = {429, 500, 502, 503, 504}


class RateLimiter:
    """At most ``rate`` request starts per second (a minimum spacing, not a burst allowance)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval, self.clock, self.sleep = 1.0 / rate, clock, sleep
        self._next = float("-inf")

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class YahooSource:
    """Daily (or other interval) bars of many symbols, one chart request per symbol."""

    def __init__(
        self,
        settings: YahooSettings,
        start: date,
        end: date,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings, self.start, self.end = settings, start, end
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "rsc-data/0.1")
        self.sleep = sleep
        self.limiter = RateLimiter(settings.requests_per_second, sleep=sleep)
        self.cache_dir = Path(settings.cache_dir).expanduser()

    def fetch(self, symbols: Sequence[str]) -> Iterator[RawBars]:
        if list(symbols) == [ALL]:
            raise SourceError("yfinance: data.symbols=['*'] cannot be listed; name the symbols")
        for symbol in symbols:
            url = self.url(symbol)
            payload = self.chart(symbol, url)
            digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
            yield RawBars(symbol, url, parse_chart(payload, self.settings, url), digest)

    def url(self, symbol: str) -> str:
        first = datetime.combine(self.start, datetime.min.time(), UTC)
        last = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), UTC)
        query = {
            "period1": int(first.timestamp()),
            "period2": int(last.timestamp()),
            "interval": self.settings.interval,
            "events": "div,split",
            "includeAdjustedClose": "true",
        }
        base = self.settings.base_url.rstrip("/")
        return f"{base}/v8/finance/chart/{quote(symbol, safe='')}?{urlencode(query)}"

    # -- cache ----------------------------------------------------------------------------------------
    def _cache_path(self, symbol: str, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        return self.cache_dir / f"{quote(symbol, safe='')}-{key}.json"

    def chart(self, symbol: str, url: str) -> dict[str, Any]:
        """The chart payload: from the cache when fresh, else from the host (then cached)."""
        path = self._cache_path(symbol, url)
        if path.is_file() and time.time() - path.stat().st_mtime < self.settings.cache_ttl_s:
            log.debug("yfinance: %s from cache %s", symbol, path)
            return json.loads(path.read_text())
        payload = self._get(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)  # a reader never sees half a response
        return payload

    # -- HTTP -----------------------------------------------------------------------------------------
    def _get(self, url: str) -> dict[str, Any]:
        settings = self.settings
        for attempt in range(settings.retries + 1):
            self.limiter.wait()
            last = attempt == settings.retries
            try:
                response = self.session.get(url, timeout=settings.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as error:
                if last:
                    raise SourceError(f"{url}: no response after {attempt + 1} tries: {error}") from error
                self._backoff(attempt, None, str(error))
                continue
            if response.status_code in RETRY_STATUS and not last:
                self._backoff(attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}")
                continue
            return _payload(response, url)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _backoff(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.settings.backoff_s * 2**attempt
        if retry_after is not None and retry_after.strip().isdigit():
            delay = float(retry_after)
        log.warning("yfinance: %s, retry %d in %.1fs", why, attempt + 1, delay)
        self.sleep(delay)


def _payload(response: requests.Response, url: str) -> dict[str, Any]:
    """The JSON body, or a SourceError with Yahoo's own error code and description."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = (payload or {}).get("chart", {}).get("error") if isinstance(payload, dict) else None
    if response.status_code != 200 or error or payload is None:
        detail = f"{error.get('code')}: {error.get('description')}" if error else response.text[:200]
        raise SourceError(f"{url}: HTTP {response.status_code}: {detail}")
    return payload


def parse_chart(payload: dict[str, Any], settings: YahooSettings, url: str) -> pd.DataFrame:
    """Chart JSON -> raw bars frame (timestamp, OHLCV); adjusted by adjclose when configured."""
    try:
        result = payload["chart"]["result"][0]
        zone = result["meta"].get("exchangeTimezoneName", "UTC")
        seconds = result.get("timestamp") or []
        quote_ = result["indicators"]["quote"][0] if seconds else {}
    except (KeyError, IndexError, TypeError) as error:
        raise SourceError(f"{url}: unexpected chart response (missing {error})") from error
    stamps = pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)
    if settings.interval in DAILY_OR_LONGER:
        stamps = stamps.tz_convert(zone).normalize()
    frame = pd.DataFrame({TIMESTAMP: stamps})
    for column in (OPEN, HIGH, LOW, CLOSE, VOLUME):
        frame[column] = pd.to_numeric(pd.Series(quote_.get(column, [None] * len(seconds))), errors="coerce")
    adjclose = result["indicators"].get("adjclose") if seconds else None
    if settings.adjusted and adjclose:
        factor = pd.to_numeric(pd.Series(adjclose[0]["adjclose"]), errors="coerce") / frame[CLOSE]
        for column in PRICE_COLUMNS:
            frame[column] = frame[column] * factor
    return frame
