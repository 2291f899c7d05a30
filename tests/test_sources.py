"""Sources: bundled samples, CSV/Parquet layouts, and Yahoo's chart endpoint replayed over real HTTP.

The Yahoo responses in tests/data/yahoo/ follow the chart endpoint's documented JSON; a small HTTP
server on 127.0.0.1 serves them, and can answer 429/503 first to exercise retries.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from rsc.config.settings import DataSettings, ValidationSettings, YahooSettings
from rsc.data.sources import BundledSource, FileSource, SourceError, make_source, read_csv_table
from rsc.data.validate import DataValidationError, validate_bars
from rsc.data.yahoo import RateLimiter, YahooSource
from rsc.storage import Storage
from tests.helpers import synthetic_bars

RECORDED = Path(__file__).parent / "data" / "yahoo"


def _within(body: bytes, query: str) -> bytes:
    """The recorded chart cut to the request's ``period1 <= t < period2``, as Yahoo answers a range."""
    chart = json.loads(body)
    result = chart["chart"]["result"][0]
    asked = parse_qs(query)
    first, end = int(asked["period1"][0]), int(asked["period2"][0])
    keep = [i for i, t in enumerate(result.get("timestamp", [])) if first <= t < end]
    if not keep:  # Yahoo leaves the bars out altogether
        result.pop("timestamp", None)
        result["indicators"] = {"quote": [{}]}
        return json.dumps(chart).encode()
    result["timestamp"] = [result["timestamp"][i] for i in keep]
    for series in (*result["indicators"]["quote"], *result["indicators"].get("adjclose", [])):
        for key, values in series.items():
            series[key] = [values[i] for i in keep]
    return json.dumps(chart).encode()


class ChartServer:
    """Replays recorded chart responses; ``script[symbol]`` lists statuses to answer first. With
    ``honour_range`` the answer holds only the bars within the request's period1..period2."""

    def __init__(self, honour_range: bool = False) -> None:
        self.requests: list[str] = []
        self.script: dict[str, list[int]] = {}
        self.honour_range = honour_range
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                owner.requests.append(self.path)
                symbol = unquote(url.path.rsplit("/", 1)[-1])
                queued = owner.script.get(symbol, [])
                if queued:
                    status = queued.pop(0)
                    self._send(
                        status, b"Too Many Requests" if status == 429 else b"busy", {"Retry-After": "0"}
                    )
                    return
                path = RECORDED / f"{quote(symbol, safe='')}.json"
                if not url.path.startswith("/v8/finance/chart/") or not path.is_file():
                    body = {"chart": {"result": None, "error": {"code": "Not Found", "description": "?"}}}
                    self._send(404, json.dumps(body).encode())
                    return
                body = path.read_bytes()
                if json.loads(body)["chart"]["error"]:
                    self._send(404, body)
                    return
                self._send(200, _within(body, url.query) if owner.honour_range else body)

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def chart_server() -> Iterator[ChartServer]:
    server = ChartServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def yahoo(server: ChartServer, tmp_path: Path, **overrides) -> tuple[YahooSource, list[float]]:
    slept: list[float] = []
    settings = YahooSettings(
        base_url=server.url,
        cache_dir=str(tmp_path / "cache"),
        backoff_s=0.5,
        requests_per_second=1000,
        **overrides,
    )
    source = YahooSource(settings, date(2012, 1, 1), date(2012, 3, 31), sleep=slept.append)
    # Only backoffs are recorded: two requests under a millisecond apart make the rate limiter wait too.
    source.limiter.sleep = lambda seconds: None
    return source, slept


def test_yahoo_daily_bars_many_symbols(chart_server, tmp_path):
    source, _ = yahoo(chart_server, tmp_path, adjusted=False)
    fetched = {raw.symbol: raw for raw in source.fetch(["GOOG", "^GSPC"])}
    goog = validate_bars(fetched["GOOG"].frame, fetched["GOOG"].origin, "GOOG")
    sample = pd.read_csv(
        Path(__file__).parents[1] / "platform/rsc/data/samples/goog_daily.csv", parse_dates=["timestamp"]
    )
    expected = sample[sample.timestamp >= "2012-02-01"].head(40).reset_index(drop=True)
    # epoch seconds at 09:30 New York (EST, then EDT after 11 March) come back as the exchange's dates
    pd.testing.assert_series_equal(goog["timestamp"], expected["timestamp"].astype("datetime64[ns]"))
    np.testing.assert_allclose(
        goog[["open", "high", "low", "close", "volume"]], expected[["open", "high", "low", "close", "volume"]]
    )
    assert "/v8/finance/chart/%5EGSPC?" in fetched["^GSPC"].origin
    assert len(validate_bars(fetched["^GSPC"].frame, "x", "^GSPC")) == 40
    assert fetched["GOOG"].sha256 != fetched["^GSPC"].sha256


def test_yahoo_adjusts_prices_by_adjclose(chart_server, tmp_path):
    source, _ = yahoo(chart_server, tmp_path)
    raw = next(source.fetch(["GOOG"]))
    recorded = json.loads((RECORDED / "GOOG.json").read_text())["chart"]["result"][0]["indicators"]
    np.testing.assert_allclose(raw.frame["close"], recorded["adjclose"][0]["adjclose"])
    np.testing.assert_allclose(raw.frame["open"] / np.array(recorded["quote"][0]["open"]), 0.98)


def test_yahoo_cache_makes_the_second_fetch_offline(chart_server, tmp_path):
    source, _ = yahoo(chart_server, tmp_path)
    first = next(source.fetch(["GOOG"])).frame
    again = next(yahoo(chart_server, tmp_path)[0].fetch(["GOOG"])).frame
    assert len(chart_server.requests) == 1
    pd.testing.assert_frame_equal(first, again)
    stale, _ = yahoo(chart_server, tmp_path, cache_ttl_s=0)
    next(stale.fetch(["GOOG"]))
    assert len(chart_server.requests) == 2


def test_yahoo_retries_429_and_5xx_with_backoff(chart_server, tmp_path):
    chart_server.script["GOOG"] = [429, 503, 503]
    source, slept = yahoo(chart_server, tmp_path)
    assert len(next(source.fetch(["GOOG"])).frame) == 40
    assert len(chart_server.requests) == 4
    assert slept == [0.0, 0.0, 0.0]  # the server's Retry-After: 0 wins over the backoff


def test_yahoo_backoff_doubles_without_retry_after(tmp_path):
    source = YahooSource(
        YahooSettings(backoff_s=0.5, cache_dir=str(tmp_path)), date(2012, 1, 1), date(2012, 2, 1)
    )
    slept: list[float] = []
    source.sleep = slept.append
    for attempt in range(3):
        source._backoff(attempt, None, "HTTP 503")
    assert slept == [0.5, 1.0, 2.0]


def test_yahoo_gives_up_after_the_retries_naming_the_url(chart_server, tmp_path):
    chart_server.script["GOOG"] = [503] * 5
    source, _ = yahoo(chart_server, tmp_path, retries=2)
    with pytest.raises(SourceError, match=r"/v8/finance/chart/GOOG\?.*HTTP 503"):
        next(source.fetch(["GOOG"]))
    assert len(chart_server.requests) == 3


def test_yahoo_unknown_symbol_is_a_clear_error(chart_server, tmp_path):
    source, _ = yahoo(chart_server, tmp_path)
    with pytest.raises(
        SourceError, match=r"chart/NOPE\?.*HTTP 404: Not Found: No data found, symbol may be delisted"
    ):
        next(source.fetch(["NOPE"]))
    assert not list((tmp_path / "cache").glob("NOPE*"))  # errors are not cached


def test_yahoo_nulls_fail_validation_or_are_forward_filled(chart_server, tmp_path):
    source, _ = yahoo(chart_server, tmp_path)
    raw = next(source.fetch(["GAPPY"]))
    with pytest.raises(
        DataValidationError, match=r"\[GAPPY\] row 7 \(2012-02-10 00:00:00-05:00\): open is nan"
    ):
        validate_bars(raw.frame, raw.origin, raw.symbol)
    repaired = validate_bars(raw.frame, raw.origin, raw.symbol, ValidationSettings(finite="repair"))
    assert len(repaired) == 40
    assert repaired.loc[7, "close"] == repaired.loc[6, "close"]


def test_yahoo_unreachable_host_names_the_url(tmp_path):
    settings = YahooSettings(base_url="http://127.0.0.1:9", cache_dir=str(tmp_path), retries=1, timeout_s=2)
    source = YahooSource(settings, date(2012, 1, 1), date(2012, 2, 1), sleep=lambda s: None)
    with pytest.raises(SourceError, match=r"127.0.0.1:9/v8/finance/chart/GOOG.*no response after 2 tries"):
        next(source.fetch(["GOOG"]))


def test_rate_limiter_spaces_requests():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    now[0] += 1.0  # idle for a while: no wait
    limiter.wait()
    assert slept == [0.25, 0.25]


# -- files and samples -----------------------------------------------------------------------------


def test_bundled_samples_are_real_and_valid():
    fetched = {raw.symbol: raw for raw in BundledSource().fetch(["*"])}
    assert sorted(fetched) == ["GOOG", "SPX"]
    spx = validate_bars(fetched["SPX"].frame, fetched["SPX"].origin, "SPX")
    assert len(spx) == 5031 and str(spx.timestamp.iloc[0].date()) == "1999-01-04"
    with pytest.raises(SourceError, match=r"no bundled sample for symbol 'TSLA'"):
        next(BundledSource().fetch(["TSLA"]))


def test_bundled_stock_closes_are_close_only_bars():
    """The 20 stocks' adjusted closes (a wide file) come as close-only bars, one symbol each; '*' keeps
    meaning the full OHLCV samples."""
    ko, xom = BundledSource().fetch(["KO", "XOM"])
    bars = validate_bars(ko.frame, ko.origin, "KO")
    assert ko.origin.endswith("[KO]") and ko.sha256 == xom.sha256
    assert len(bars) == 2769 and str(bars.timestamp.iloc[0].date()) == "2008-01-02"
    assert (bars.open == bars.close).all() and (bars.high == bars.close).all() and (bars.volume == 0).all()
    assert not ko.frame.equals(xom.frame)


def test_file_layouts_template_folder_and_long_format(tmp_path):
    storage = Storage()
    a, b = (
        synthetic_bars(30, seed=1, symbol="A").drop(columns="symbol"),
        synthetic_bars(30, seed=2).drop(columns="symbol"),
    )
    (tmp_path / "per").mkdir()
    a.to_csv(tmp_path / "per" / "A.csv", index=False)
    b.to_parquet(tmp_path / "per" / "%5EB.parquet", index=False)
    long = pd.concat([a.assign(symbol="A"), b.assign(symbol="^B")]).sample(frac=1, random_state=0)
    long.to_csv(tmp_path / "long.csv")

    folder = {r.symbol: r for r in FileSource(f"file://{tmp_path}/per", storage).fetch(["*"])}
    assert sorted(folder) == ["A", "^B"]
    assert folder["^B"].origin.endswith("%5EB.parquet")
    template = next(FileSource(f"file://{tmp_path}/per/{{symbol}}.csv", storage).fetch(["A"]))
    pd.testing.assert_frame_equal(template.frame, folder["A"].frame)
    many = {r.symbol: r for r in FileSource(str(tmp_path / "long.csv"), storage).fetch(["^B", "A"])}
    assert len(many["A"].frame) == len(many["^B"].frame) == 30
    assert many["A"].sha256 == many["^B"].sha256  # one file, one hash
    rows = many["A"].frame.index.to_numpy()  # the file's own row numbers, for error messages
    assert sorted(rows) != list(range(30))


@pytest.mark.parametrize(
    ("path", "symbols", "message"),
    [
        ("{root}/per/{{symbol}}.csv", ["ZZZ"], r"per/ZZZ.csv: file not found"),
        ("{root}/per", ["ZZZ"], r"per: no file for symbol 'ZZZ'"),
        ("{root}/per/{{symbol}}.csv", ["*"], r"needs a folder or one file"),
        ("{root}/one.csv", ["A", "B"], r"one.csv: no 'symbol' column, so it holds one symbol"),
        ("{root}/garbage.parquet", ["A"], r"garbage.parquet: not a readable Parquet file"),
    ],
)
def test_file_source_errors_name_the_file(tmp_path, path, symbols, message):
    (tmp_path / "per").mkdir()
    synthetic_bars(5).to_csv(tmp_path / "per" / "A.csv", index=False)
    synthetic_bars(5).drop(columns="symbol").to_csv(tmp_path / "one.csv", index=False)
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match=message):
        list(FileSource(path.format(root=tmp_path), Storage()).fetch(symbols))


def test_make_source_needs_a_path_for_files():
    with pytest.raises(SourceError, match=r"data.path is required for data.source='csv'"):
        make_source(DataSettings(source="csv"), Storage())
    assert isinstance(make_source(DataSettings(source="yfinance"), Storage()), YahooSource)


def test_yahoo_intraday_bars_stay_utc_instants():
    from rsc.data.yahoo import parse_chart

    payload = json.loads((RECORDED / "GOOG.json").read_text())
    frame = parse_chart(payload, YahooSettings(interval="1h", adjusted=False), "recorded")
    bars = validate_bars(frame, "recorded", "GOOG")
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2012-02-01 14:30")  # 09:30 New York in UTC
    assert bars["timestamp"].iloc[-1].hour == 13  # after the switch to daylight saving time


def test_data_price_is_one_setting_for_every_source():
    """data.price decides Yahoo's adjustment as it does a file's; unset, each source keeps its default."""
    from rsc.config.settings import DataSettings
    from rsc.data.sources import file_format, make_source

    def adjusted(**data) -> bool:
        return make_source(DataSettings(source="yfinance", **data), Storage()).settings.adjusted

    assert adjusted() is True and adjusted(yfinance={"adjusted": False}) is False
    assert (
        adjusted(price="close") is False and adjusted(price="adj_close", yfinance={"adjusted": False}) is True
    )
    assert file_format(DataSettings(source="csv", path="x.csv")).price == "close"
    assert file_format(DataSettings(source="csv", path="x.csv", price="adj_close")).price == "adj_close"


def read_csv(data: bytes, parse_times: bool = True) -> pd.DataFrame:
    """What a file source makes of a CSV file before its columns are mapped."""
    table = read_csv_table(data, parse_times)
    return table.to_pandas() if table is not None else pd.read_csv(io.BytesIO(data))


@pytest.mark.parametrize(
    "text",
    [
        "timestamp,open,close,volume\n2010-01-04,1.5,2,100\n2010-01-05,,NA,200\n",
        "Date,Close\n01/02/2020,3\n13/02/2020,4\n",
        ",open\n0,1\n1,2\n",
        "ts,open\n1577836800,1\n1577836900,2\n",
        "timestamp,open,v\n2010-01-04 10:00:00+05:00,abc,\n2010-01-04T10:00:00Z,2,\n",
        "a,a\n1,2\n",
        "x,flag\n1,True\n2,False\n",
        "timestamp,open\n",
    ],
)
def test_csv_files_read_as_pandas_reads_them(text):
    expected = pd.read_csv(io.StringIO(text))
    pd.testing.assert_frame_equal(read_csv(text.encode(), parse_times=False), expected)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("timestamp,open\n2010-01-04,1\n2010-01-05,2\n", "datetime64[ns]"),
        ("timestamp,open\n2016-01-01T00:00:00Z,1\n2016-01-01 00:01:00+00:00,2\n", "datetime64[ns, UTC]"),
        ("timestamp,open\n2016-01-01T00:00:00Z,1\n2016-01-01T00:01:00+05:00,2\n", "str"),  # local zones
        ("timestamp,open\n2016-01-01 10:00:00,1\n2016-01-01 11:00:00,2\n", "str"),  # naive intraday
        ("timestamp,open\n01/02/2020,1\n13/02/2020,2\n", "str"),  # slashed: the settings decide
    ],
)
def test_the_reader_parses_iso_dates_and_utc_stamps_and_leaves_the_rest_to_the_loader(text, kind):
    """Dates and UTC stamps are parsed as the file is read (the same instants pandas gives); stamps
    whose reading depends on the settings or keeps a local date stay text."""
    frame = read_csv(text.encode())
    assert str(frame["timestamp"].dtype) == kind
    if kind != "str":
        as_pandas = pd.to_datetime(pd.read_csv(io.StringIO(text))["timestamp"], format="ISO8601")
        assert (frame["timestamp"].to_numpy() == as_pandas.to_numpy()).all()


def test_clean_files_come_checked_as_arrays_with_the_bars_of_the_frame_route(tmp_path):
    """A clean file (dates or UTC stamps, numbers without gaps) comes as checked arrays, holding exactly
    the bars the frame route (loader, then every check) gives; a file with something to report or one
    that needs the loader's help comes as a frame, so its findings are worded as ever."""
    from rsc.data.columns import FileFormat
    from rsc.data.raw import CleanBars, RawBars

    daily = synthetic_bars(60, seed=1).drop(columns="symbol")
    daily["Adj Close"] = daily["close"] * 0.9
    daily.to_csv(tmp_path / "DAILY.csv", index=False)
    minutes = synthetic_bars(60, seed=2).drop(columns="symbol")
    minutes["timestamp"] = pd.date_range("2020-03-02 14:30", periods=60, freq="min").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    minutes["Adj Close"] = minutes["close"]
    minutes.to_csv(tmp_path / "MINUTES.csv", index=False)
    gap = daily.copy()
    gap.loc[5, "close"] = np.nan
    gap.to_csv(tmp_path / "GAP.csv", index=False)
    daily.assign(timestamp=daily["timestamp"].dt.strftime("%d/%m/%Y")).to_csv(
        tmp_path / "DAYFIRST.csv", index=False
    )

    for price in ("close", "adj_close"):
        source = FileSource(f"file://{tmp_path}", Storage(), fmt=FileFormat(price=price, date_format=None))
        fetched = {bars.symbol: bars for bars in (read() for read in source.readers(["*"], clean=True))}
        assert {s for s, b in fetched.items() if isinstance(b, CleanBars)} == {"DAILY", "MINUTES"}
        assert all(isinstance(fetched[s], RawBars) for s in ("GAP", "DAYFIRST"))
        for symbol in ("DAILY", "MINUTES"):
            raw = next(read() for read in source.readers([symbol]))
            expected = validate_bars(raw.frame, raw.origin, symbol, ValidationSettings(quality="off"))
            clean = fetched[symbol]
            pd.testing.assert_frame_equal(pd.DataFrame({"timestamp": clean.stamps, **clean.prices}), expected)
    assert source.readings[f"file://{tmp_path}/DAILY.csv"].notes  # the adjustment is stated


def test_a_parquet_file_whose_index_holds_the_stamps_is_read_as_pandas_reads_it(tmp_path):
    """pandas reads a stored index back as the index, not as a column: such a file takes the frame
    route (where the loader sees what pandas sees), not the clean lane."""
    from rsc.data.raw import RawBars

    bars = synthetic_bars(30).drop(columns="symbol")
    bars.set_index("timestamp").to_parquet(tmp_path / "IDX.parquet")
    bars.to_parquet(tmp_path / "COL.parquet", index=False)
    source = FileSource(f"file://{tmp_path}", Storage(), default_format="parquet")
    fetched = {b.symbol: b for b in (read() for read in source.readers(["*"], clean=True))}
    assert isinstance(fetched["IDX"], RawBars) and not isinstance(fetched["COL"], RawBars)
