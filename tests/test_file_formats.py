"""Files as people export them load with settings alone: Yahoo downloads, pandas exports, naive FX
stamps, epochs, wide closes; whatever could be read two ways is an error naming the setting."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest

from rsc.cli.main import main
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TIMESTAMP, VOLUME
from rsc.data.dialect import CsvDialect, sniff
from rsc.data.raw import SourceError
from rsc.data.ticker_csv import has_ticker_header
from rsc.stages import evaluate, ingest
from rsc.storage import Storage
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars

DATES = ("data.start=2015-01-01",)


def ingested(tmp_path, path, *settings: str, symbols: str = "[SYN]") -> pd.DataFrame:
    cfg = smoke_settings(
        tmp_path / "store", "data.source=csv", f"data.path=file://{path}", f"data.symbols={symbols}", *DATES,
        *settings,
    )  # fmt: skip
    result = ingest.run(cfg)
    return Storage().read_dataset(result.bars_uri)


def version_of(store: Path, path: Path, source: str = "csv") -> str:
    """The dataset version (content hash) an ingest of every symbol under ``path`` stores."""
    cfg = smoke_settings(
        store, f"data.source={source}", f"data.path=file://{path}", "data.symbols=['*']", *DATES
    )
    return ingest.run(cfg).sha256


def yahoo_download(n: int = 60) -> pd.DataFrame:
    """``Date,Open,High,Low,Close,Adj Close,Volume`` with dates like 1/4/2015 and a dividend factor."""
    bars = synthetic_bars(n).drop(columns=SYMBOL)
    return pd.DataFrame(
        {
            "Date": [f"{t.month}/{t.day}/{t.year}" for t in bars[TIMESTAMP]],
            "Open": bars[OPEN],
            "High": bars[HIGH],
            "Low": bars[LOW],
            "Close": bars[CLOSE],
            "Adj Close": bars[CLOSE] * 0.9,
            "Volume": bars[VOLUME],
        }
    )


def test_a_yahoo_download_loads_with_month_first_dates_and_adjusted_prices(tmp_path):
    path = tmp_path / "SYN.csv"
    download = yahoo_download()
    download.to_csv(path, index=False)
    plain = ingested(tmp_path / "plain", path)
    adjusted = ingested(tmp_path / "adjusted", path, "data.price=adj_close")
    assert plain[TIMESTAMP].iloc[0] == pd.Timestamp("2015-01-01") and len(plain) == 60
    assert np.allclose(plain[CLOSE], download["Close"]) and np.allclose(
        adjusted[CLOSE], download["Adj Close"]
    )
    assert np.allclose(adjusted[OPEN] / plain[OPEN], 0.9) and np.allclose(adjusted[HIGH] / plain[HIGH], 0.9)


def test_a_pandas_export_with_an_unnamed_index_column_loads(tmp_path):
    path = tmp_path / "SYN.csv"
    bars = synthetic_bars(40).drop(columns=SYMBOL).set_index(TIMESTAMP)
    bars.index.name = None
    bars.rename(columns=str.title).to_csv(path)  # ",Open,High,Low,Close,Volume"
    assert path.read_text().startswith(",Open,High,Low,Close,Volume")
    loaded = ingested(tmp_path, path)
    assert len(loaded) == 40 and loaded[TIMESTAMP].iloc[-1] == bars.index[-1]


def hourly_fx(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 1.15 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    stamps = pd.date_range("2016-01-04 00:00", periods=n, freq="h")
    return pd.DataFrame(
        {
            "Gmt time": stamps.strftime("%Y-%m-%d %H:%M:%S"),
            "Open": close,
            "High": close * 1.0005,
            "Low": close * 0.9995,
            "Close": close,
        }
    )


def test_naive_hourly_fx_bars_take_their_zone_from_the_settings(tmp_path):
    path = tmp_path / "EURUSD.csv"
    hourly_fx().to_csv(path, index=False)
    with pytest.raises(Exception, match=r"intraday timestamp without a time zone.*data\.timezone=UTC"):
        ingested(tmp_path / "a", path, "data.frequency=1h", symbols="[EURUSD]")
    loaded = ingested(
        tmp_path / "b", path, "data.frequency=1h", "data.timezone=America/New_York", symbols="[EURUSD]"
    )
    assert loaded[TIMESTAMP].iloc[0] == pd.Timestamp("2016-01-04 05:00")  # 00:00 in New York, as UTC
    assert (loaded[VOLUME] == 0).all() and len(loaded) == 200


def test_epoch_milliseconds_and_a_ticker_column_load_as_utc(tmp_path):
    path = tmp_path / "bars.csv"
    bars = synthetic_bars(30)
    frame = bars.rename(columns={TIMESTAMP: "time", SYMBOL: "Ticker", VOLUME: "Vol"})
    frame["time"] = bars[TIMESTAMP].astype("int64") // 10**6
    frame.to_csv(path, index=False)
    loaded = ingested(tmp_path, path)
    assert (loaded[TIMESTAMP].to_numpy() == bars[TIMESTAMP].to_numpy()).all()


def test_a_wide_file_of_closes_becomes_one_symbol_per_column(tmp_path):
    path = tmp_path / "closes.csv"
    stamps = pd.bdate_range("2015-01-01", periods=50)
    pd.DataFrame({"Date": stamps.strftime("%Y-%m-%d"), "AAA": np.linspace(10, 20, 50), "BBB": 5.0}).to_csv(
        path, index=False
    )
    loaded = ingested(tmp_path, path, "data.layout=wide", "env.fill=next_close", symbols="['*']")
    assert sorted(loaded[SYMBOL].unique()) == ["AAA", "BBB"] and len(loaded) == 100
    aaa = loaded[loaded[SYMBOL] == "AAA"]
    assert np.allclose(aaa[OPEN], aaa[CLOSE]) and aaa[CLOSE].iloc[-1] == 20.0


def test_an_explicit_column_map_wins_over_the_names(tmp_path):
    path = tmp_path / "SYN.csv"
    bars = synthetic_bars(30).drop(columns=SYMBOL)
    frame = bars.rename(columns={CLOSE: "Close"})
    frame["Last"] = frame["Close"] * 2  # another close-like column: the map decides
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError, match=r"columns \['Close', 'Last'\] could each be the 'close'"):
        ingested(tmp_path / "a", path)
    loaded = ingested(tmp_path / "b", path, "data.columns={close: Close}")
    assert np.allclose(loaded[CLOSE], bars[CLOSE])


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (
            ["1/2/2015", "2/3/2015", "3/4/2015"],
            r'read as month-first or day-first alike.*"%m/%d/%Y" or "%d/%m/%Y"',
        ),
        (
            ["1/13/2015", "14/1/2015", "3/4/2015"],
            r"day-first in row 1 \(14/1/2015\) but month-first in row 0",
        ),
    ],
)
def test_dates_that_read_two_ways_are_an_error_naming_the_rows(tmp_path, dates, message):
    path = tmp_path / "SYN.csv"
    frame = yahoo_download(3).assign(Date=dates)
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError, match=message):
        ingested(tmp_path, path)


def test_a_given_date_format_decides(tmp_path):
    path = tmp_path / "SYN.csv"
    frame = yahoo_download(3).assign(Date=["1/2/2015", "2/2/2015", "3/2/2015"])
    frame.to_csv(path, index=False)
    loaded = ingested(tmp_path, path, "data.date_format='%d/%m/%Y'")
    assert list(loaded[TIMESTAMP].dt.month) == [2, 2, 2]


def test_rsc_data_inspect_says_what_the_loader_would_do_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "SYN.csv"
    yahoo_download().to_csv(path, index=False)
    assert main(["data", "inspect", str(path), "-c", "data.price=adj_close"]) == 0
    out = capsys.readouterr().out
    for expected in ("Date -> timestamp", "Adj Close -> adj_close", "%m/%d/%Y (detected)", "1d", "60 rows"):
        assert expected in out, (expected, out)
    assert "adjusted prices" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SYN.csv"]


def test_close_only_bars_trade_only_where_they_can_be_traded_honestly(tmp_path):
    """A wide file's bars carry closes alone: fills at the next open, a range-based spread, stops and
    range or volume indicators are refused, each named; with close-based settings the bars load."""
    path = tmp_path / "closes.csv"
    stamps = pd.bdate_range("2015-01-01", periods=50)
    pd.DataFrame({"Date": stamps.strftime("%Y-%m-%d"), "AAA": np.linspace(10, 20, 50)}).to_csv(
        path, index=False
    )
    wide = ("data.layout=wide",)
    with pytest.raises(ValueError, match=r"AAA: close-only bars .* set env\.fill=next_close") as refused:
        ingested(tmp_path / "a", path, *wide, "env.spread_factor=0.5", "env.stop_loss=0.05", symbols="[AAA]")
    for setting in ("env.spread_factor", "env.stop_loss"):
        assert setting in str(refused.value)
    indicators = "features.indicators=[{name: log_return, window: 1}, {name: atr, window: 14}]"
    with pytest.raises(ValueError, match=r"features\.indicators \['atr'\] read high, low or volume"):
        ingested(tmp_path / "b", path, *wide, "env.fill=next_close", indicators, symbols="[AAA]")
    loaded = ingested(tmp_path / "c", path, *wide, "env.fill=next_close", symbols="[AAA]")
    assert len(loaded) == 50
    run_root = smoke_settings(tmp_path / "c" / "store").run_root
    assert Storage().read_json(f"{run_root}/quality.json")["close_only"] == ["AAA"]
    assert evaluate._quality_warnings(Storage(), run_root)[-1].startswith("AAA: close-only bars")


@pytest.mark.parametrize(
    ("dates", "settings", "first"),
    [
        (["13.01.2015", "14.01.2015", "15.01.2015"], (), "2015-01-13"),  # dotted, day-first
        (["01-13-2015", "01-14-2015", "01-15-2015"], (), "2015-01-13"),  # dashed, month-first
        ([20150113, 20150114, 20150115], ("data.date_format='%Y%m%d'",), "2015-01-13"),  # digits
        (["2015.01.05", "2015.01.06", "2015.01.07"], (), "2015-01-05"),  # year-first (MetaTrader)
        (["2015.01.05", "2015.01.06", "2015.01.07"], (), "2015-01-05"),  # year-first, slashed
    ],
)
def test_dates_in_other_separators_and_as_digits(tmp_path, dates, settings, first):
    path = tmp_path / "SYN.csv"
    yahoo_download(3).assign(Date=dates).to_csv(path, index=False)
    assert str(ingested(tmp_path, path, *settings)[TIMESTAMP].iloc[0])[:10] == first


def test_a_single_close_series_is_one_symbol_named_by_the_file(tmp_path):
    path = tmp_path / "SPX.csv"
    stamps = pd.bdate_range("2015-01-01", periods=40)
    pd.DataFrame({"Date": stamps.strftime("%Y-%m-%d"), "Close": np.linspace(100, 120, 40)}).to_csv(
        path, index=False
    )
    loaded = ingested(tmp_path, path, "data.layout=wide", "env.fill=next_close", symbols="[SPX]")
    assert len(loaded) == 40 and set(loaded[SYMBOL]) == {"SPX"}


def test_stamps_with_their_own_offsets_ignore_the_timezone_setting(tmp_path):
    path = tmp_path / "EURUSD.csv"
    frame = hourly_fx(48)
    stamps = pd.date_range("2016-03-12 00:00", periods=48, freq="h", tz="America/New_York")  # DST inside
    frame["Gmt time"] = [t.isoformat() for t in stamps]
    frame.to_csv(path, index=False)
    loaded = ingested(tmp_path, path, "data.frequency=1h", "data.timezone=Europe/London", symbols="[EURUSD]")
    assert loaded[TIMESTAMP].iloc[0] == pd.Timestamp("2016-03-12 05:00") and len(loaded) == 48


def _run_to_evaluation(cfg) -> dict:
    """ingest -> features -> split -> train -> evaluate at stage level; the evaluation's metrics.json."""
    from rsc.stages import features, split, train

    parts = split.run(cfg, features.run(cfg, ingest.run(cfg).bars_uri).features_uri)
    model = train.run(cfg, parts.split_uri, parts.scaler_uri).model_uri
    return Storage().read_json(evaluate.run(cfg, parts.split_uri, parts.scaler_uri, model).metrics_uri)


@pytest.mark.slow
def test_a_run_completes_on_naive_hourly_fx_bars_annualised_by_their_own_clock(tmp_path, ray_session):
    path = tmp_path / "EURUSD.csv"
    fx = hourly_fx(24 * 5 * 60)  # twelve weeks of every hour: a 24-hour market
    fx.to_csv(path, index=False)
    cfg = smoke_settings(
        tmp_path / "store", "data.source=csv", f"data.path=file://{path}", "data.symbols=[EURUSD]",
        "data.frequency=1h", "data.timezone=Asia/Tokyo", "data.start=2016-01-01", "data.end=2016-12-31",
        "split.train_end=2016-02-14", "split.validation_end=2016-03-06", "env.fill=next_close",
        "tune.enabled=false", f"ray.address={ray_session.address}",
    )  # fmt: skip
    results = _run_to_evaluation(cfg)
    periods = results["conventions"]["periods_per_year"]
    assert 24 * 300 < periods < 24 * 366, results["conventions"]  # hourly bars around the clock, not 252
    assert results["policy"]["bars"] > 400


@pytest.mark.slow
def test_monthly_bars_run_with_the_settings_the_short_data_error_names(tmp_path, ray_session):
    """Ten years of monthly bars are too short for the demo's four folds: the error names the settings
    to change, and with them the run completes, annualised at 12 bars a year."""
    bars = synthetic_bars(120, seed=4, symbol="IDX", volatility=0.04)
    bars[TIMESTAMP] = pd.date_range("2005-01-31", periods=120, freq="ME")
    path = tmp_path / "IDX.csv"
    bars.drop(columns=[SYMBOL]).to_csv(path, index=False)
    base = (
        "data.source=csv", f"data.path=file://{path}", "data.symbols=[IDX]", "data.frequency=1mo",
        "data.start=2005-01-01", "data.end=2014-12-31", "split.train_end=2011-12-31",
        "split.validation_end=2012-12-31", "split.walk_forward.folds=4", "tune.enabled=false",
        f"ray.address={ray_session.address}",
    )  # fmt: skip
    cfg = smoke_settings(tmp_path / "store", *base)
    from rsc.stages import features, split

    with pytest.raises(
        ValueError, match=r"lower split\.walk_forward\.folds, set train_bars / validation_bars"
    ):
        split.run(cfg, features.run(cfg, ingest.run(cfg).bars_uri).features_uri)
    named = ("split.walk_forward.folds=1", "env.window=6", "env.episode_length=24", "evaluate.min_periods=12")
    results = _run_to_evaluation(smoke_settings(tmp_path / "store", *base, *named))
    assert results["conventions"]["periods_per_year"] == pytest.approx(12, rel=0.05)
    assert results["policy"]["bars"] >= 20


@pytest.mark.parametrize(
    ("separator", "decimal", "described"),
    [
        (";", ",", "semicolon-separated, decimal comma"),
        ("\t", ".", "tab-separated"),
        ("|", ",", "pipe-separated, decimal comma"),
    ],
)
def test_a_locale_export_loads_as_the_same_bars(tmp_path, capsys, separator, decimal, described):
    """A spreadsheet export with another delimiter or a decimal comma is the same version of the
    dataset as the comma-separated file of the same bars; ``rsc data inspect`` names the dialect."""
    bars = synthetic_bars(40).drop(columns=SYMBOL)
    usual, local = tmp_path / "usual" / "SYN.csv", tmp_path / "local" / "SYN.csv"
    usual.parent.mkdir(), local.parent.mkdir()
    bars.to_csv(usual, index=False)
    bars.to_csv(local, index=False, sep=separator, decimal=decimal)
    assert version_of(tmp_path / "a", usual) == version_of(tmp_path / "b", local)
    assert main(["data", "inspect", str(local)]) == 0
    assert f"CSV dialect: {described} (detected)" in capsys.readouterr().out


def test_digit_groups_with_a_decimal_comma_load(tmp_path):
    """``1.234,5``: a dot between digit groups, read by pandas (pyarrow reads no digit groups)."""
    path = tmp_path / "SYN.csv"
    rows = ["Date;Open;High;Low;Close;Volume"] + [
        f"{day:02d}.01.2015;1.2{day:02d},5;1.3{day:02d},25;1.1{day:02d};1.2{day:02d},75;1.000.{day:03d}"
        for day in range(2, 30)
    ]
    path.write_text("\n".join(rows) + "\n")
    loaded = ingested(tmp_path, path)  # day-first: days above 12 decide it
    assert loaded[OPEN].iloc[0] == 1202.5 and loaded[CLOSE].iloc[0] == 1202.75
    assert loaded[VOLUME].iloc[0] == 1_000_002 and len(loaded) == 28


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"Date,Open\n1;2,5\n", CsvDialect()),  # a comma in the header: the usual file
        (b"Date;Open\n2015-01-02;12\n", CsvDialect(";")),  # no decimal comma in the rows
        (b"\xef\xbb\xbfDate\tOpen\n2015-01-02\t1,5\n", CsvDialect("\t", ",")),
        (b"Date;Open\n2015-01-02;1.234,5\n", CsvDialect(";", ",", ".")),
        (b"Date Open\n", CsvDialect()),  # one column: pandas and the column map say what is wrong
        (b'Date;Open;"Close, EUR"\n2015-01-02;1,5;1,25\n', CsvDialect(";", ",")),  # a quoted comma
        (b'Date\tOpen\tVolume\n2015-01-02\t101.5\t"987,654"\n', CsvDialect("\t")),  # comma groups digits
    ],
)
def test_the_dialect_is_read_from_the_first_lines(text, expected):
    assert sniff(text) == expected


def date_and_time(separator: str = ",", names: tuple[str, str] = ("Date", "Time")) -> str:
    """Hourly FX bars with the date (``2016.01.04``) and the time of day in columns of their own."""
    bars = hourly_fx()
    stamps = pd.to_datetime(bars.pop("Gmt time"))
    bars.insert(0, names[1], stamps.dt.strftime("%H:%M"))
    bars.insert(0, names[0], stamps.dt.strftime("%Y.%m.%d"))
    return bars.to_csv(index=False, sep=separator)


@pytest.mark.parametrize(
    ("separator", "names"), [(",", ("Date", "Time")), ("\t", ("<DATE>", "<TIME>"))], ids=["fx", "metatrader"]
)
def test_a_date_column_and_a_time_column_make_the_timestamp(tmp_path, separator, names):
    path = tmp_path / "EURUSD.csv"
    path.write_text(date_and_time(separator, names))
    loaded = ingested(tmp_path, path, "data.frequency=1h", "data.timezone=Europe/London", symbols="[EURUSD]")
    assert loaded[TIMESTAMP].iloc[0] == pd.Timestamp("2016-01-04 00:00")  # London is UTC in winter
    assert loaded[TIMESTAMP].iloc[1] == pd.Timestamp("2016-01-04 01:00") and len(loaded) == 200


def test_a_time_column_that_is_no_time_of_day_is_an_ambiguity(tmp_path):
    path = tmp_path / "EURUSD.csv"
    frame = pd.read_csv(io.StringIO(date_and_time()))
    frame["Time"] = "2016-01-04 " + frame["Time"]
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError, match=r"columns \['Date', 'Time'\] could each be the 'timestamp'"):
        ingested(tmp_path, path, "data.frequency=1h", "data.timezone=UTC", symbols="[EURUSD]")


def test_a_newest_first_export_with_digit_groups_is_the_same_version(tmp_path):
    """``Date,Price,Open,High,Low,Vol.,Change %`` newest first, with quoted ``"1,234.56"`` numbers (as
    several sites export history): the same version of the dataset as the plain file of the bars."""
    bars = yahoo_download(40).drop(columns="Adj Close")
    for column in ("Open", "High", "Low", "Close"):
        bars[column] = (bars[column] * 40).round(2)
    bars["Volume"] = bars["Volume"].round()
    plain, export = tmp_path / "plain" / "SYN.csv", tmp_path / "export" / "SYN.csv"
    plain.parent.mkdir(), export.parent.mkdir()
    bars.to_csv(plain, index=False)
    grouped = {c: [f"{v:,.2f}" for v in bars[c]] for c in ("Open", "High", "Low", "Close")}
    site = pd.DataFrame(
        {
            "Date": bars["Date"],
            "Price": grouped["Close"],
            "Open": grouped["Open"],
            "High": grouped["High"],
            "Low": grouped["Low"],
            "Vol.": [f"{v:,.0f}" for v in bars["Volume"]],
            "Change %": "0.10%",
        }
    )
    site.iloc[::-1].to_csv(export, index=False)
    assert '"1,' in export.read_text()  # digit groups, quoted
    assert version_of(tmp_path / "a", plain) == version_of(tmp_path / "b", export)


def compress(suffix: str, data: bytes, member: str = "SYN.csv") -> bytes:
    """``data`` compressed as ``suffix`` says; a zip as macOS's Finder makes it (with __MACOSX/)."""
    if suffix == ".gz":
        return gzip.compress(data)
    if suffix == ".bz2":
        return bz2.compress(data)
    if suffix == ".xz":
        return lzma.compress(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
        archive.writestr(f"__MACOSX/._{member}", b"Finder's resource fork")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["SYN.csv.gz", "SYN.csv.bz2", "SYN.csv.xz", "SYN.csv.zip", "SYN.zip"])
def test_compressed_files_in_a_folder_are_the_csv_files_they_hold(tmp_path, name):
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir(), packed.mkdir()
    yahoo_download(30).to_csv(plain / "SYN.csv", index=False)
    (packed / name).write_bytes(compress(PurePosixPath(name).suffix, (plain / "SYN.csv").read_bytes()))
    assert version_of(tmp_path / "a", plain) == version_of(tmp_path / "b", packed)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("SYN.csv.gz", b"not gzip", r"SYN\.csv\.gz: not a readable \.gz file"),
        ("SYN.zip", None, r"SYN\.zip: a zip archive of bars holds one CSV file, not \['a\.csv', 'b\.csv'\]"),
        ("notes.txt", b"x", r"no bar files in the folder .*; it holds \['notes\.txt'\]"),
        ("SYN.csv.gz", b"damaged", r"SYN\.csv\.gz: not a readable \.gz file: Error -3"),
    ],
)
def test_unreadable_archives_and_empty_folders_are_errors_naming_them(tmp_path, name, data, message):
    if data == b"damaged":  # a deflate stream broken inside: zlib's own error
        broken = bytearray(gzip.compress(yahoo_download(300).to_csv(index=False).encode()))
        broken[30] ^= 0xFF
        broken[31] ^= 0xFF
        data = bytes(broken)
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.csv", "x")
            archive.writestr("b.csv", "y")
        data = buffer.getvalue()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(data)
    cfg = smoke_settings(
        tmp_path / "store", "data.source=csv", f"data.path=file://{tmp_path / 'in'}", "data.symbols=['*']"
    )
    with pytest.raises(SourceError, match=message):
        ingest.run(cfg)


@pytest.mark.parametrize("index_name", ["Date", None], ids=["named", "unnamed"])
def test_a_parquet_file_of_a_frame_indexed_by_date_loads(tmp_path, index_name):
    """``frame.to_parquet(path)`` of bars indexed by their dates (as market-data libraries hand them
    out) stores the dates as the frame's index: they are the timestamp."""
    bars = synthetic_bars(30).drop(columns=SYMBOL).set_index(TIMESTAMP).rename_axis(index_name)
    (tmp_path / "pq").mkdir(), (tmp_path / "csv").mkdir()
    bars.to_parquet(tmp_path / "pq" / "SYN.parquet")
    bars.rename_axis(TIMESTAMP).reset_index().to_csv(tmp_path / "csv" / "SYN.csv", index=False)
    from_parquet = version_of(tmp_path / "a", tmp_path / "pq", "parquet")
    assert from_parquet == version_of(tmp_path / "b", tmp_path / "csv")


def yfinance_csv(tickers: dict[str, pd.DataFrame]) -> str:
    """What ``yfinance.download(tickers).to_csv()`` writes: a row of prices, one of tickers, one naming
    the index."""
    parts = []
    for ticker, bars in tickers.items():
        wide = bars.set_index(TIMESTAMP).rename_axis("Date")[[CLOSE, HIGH, LOW, OPEN, VOLUME]]
        wide.columns = pd.MultiIndex.from_product([["Close", "High", "Low", "Open", "Volume"], [ticker]])
        parts.append(wide)
    frame = pd.concat(parts, axis=1)
    frame.columns.names = ["Price", "Ticker"]
    return frame.to_csv()


def test_a_yfinance_download_of_one_ticker_is_its_bars(tmp_path, capsys):
    bars = synthetic_bars(30).drop(columns=SYMBOL)
    (tmp_path / "yf").mkdir(), (tmp_path / "plain").mkdir()
    (tmp_path / "yf" / "SYN.csv").write_text(yfinance_csv({"SYN": bars}))
    assert (tmp_path / "yf" / "SYN.csv").read_text().splitlines()[1].startswith("Ticker,SYN")
    bars.to_csv(tmp_path / "plain" / "SYN.csv", index=False)
    assert version_of(tmp_path / "a", tmp_path / "yf") == version_of(tmp_path / "b", tmp_path / "plain")
    assert main(["data", "inspect", str(tmp_path / "yf" / "SYN.csv")]) == 0
    assert "header rows of prices and tickers (yfinance): ['SYN']" in capsys.readouterr().out


def test_a_yfinance_download_of_many_tickers_is_one_file_of_many_symbols(tmp_path):
    long, short = synthetic_bars(30).drop(columns=SYMBOL), synthetic_bars(20, seed=4).drop(columns=SYMBOL)
    short[TIMESTAMP] = long[TIMESTAMP].iloc[10:].to_numpy()  # a shorter history: empty cells before
    path = tmp_path / "download.csv"
    path.write_text(yfinance_csv({"AAA": long, "BBB": short}))
    loaded = ingested(tmp_path, path, symbols="['*']")
    assert loaded.groupby(SYMBOL).size().to_dict() == {"AAA": 30, "BBB": 20}
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "AAA.csv").write_text(path.read_text())
    with pytest.raises(SourceError, match=r"the file of symbol 'AAA' holds the bars of \['AAA', 'BBB'\]"):
        ingested(tmp_path / "f", tmp_path / "folder", symbols="['*']")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"Price,Close,Open\r\nTicker,A,A\r\nDate,,\r\n2015-01-02,1,2\r\n", True),  # Windows line ends
        (b"Price,Close\nTicker,A\nDate,3\n2015-01-02,1\n", False),  # a third row with values is data
        (b"Date,Close\n2015-01-02,1\n", False),
        (b"Price,Close\nTicker,A\n", False),  # no row naming the index
    ],
)
def test_the_ticker_header_is_told_from_its_first_three_lines(text, expected):
    assert has_ticker_header(text) is expected


@pytest.mark.parametrize(
    "stamps",
    [
        ["2016/01/04 09:30:00+00:00", "2016/01/04 09:31:00+00:00"],  # a zone: parsed as ISO-like text
        ["2016.01.04T09:30:00Z", "2016.01.04T09:31:00Z"],
        ["2016.01.04 09:30", "2016.01.04 09:31"],  # the detected format
    ],
)
def test_year_first_stamps_load_with_or_without_a_zone(tmp_path, stamps):
    path = tmp_path / "SYN.csv"
    frame = synthetic_bars(2).drop(columns=SYMBOL).assign(timestamp=stamps)
    frame.to_csv(path, index=False)
    loaded = ingested(tmp_path, path, "data.frequency=1m", "data.timezone=UTC")
    assert list(loaded[TIMESTAMP]) == [pd.Timestamp("2016-01-04 09:30"), pd.Timestamp("2016-01-04 09:31")]


@pytest.mark.parametrize("stored", ["the date column", "a timestamp index"])
def test_a_parquet_index_beside_a_date_column_is_not_read_twice(tmp_path, stored):
    bars = synthetic_bars(30).drop(columns=SYMBOL).rename(columns={TIMESTAMP: "date"})
    indexed = (
        bars.set_index("date", drop=False)
        if stored == "the date column"
        else bars.set_index(bars["date"].rename(TIMESTAMP))
    )
    (tmp_path / "pq").mkdir()
    indexed.to_parquet(tmp_path / "pq" / "SYN.parquet")
    loaded = ingested(tmp_path, tmp_path / "pq", "data.source=parquet", symbols="['*']")
    assert len(loaded) == 30 and loaded[TIMESTAMP].iloc[0] == bars["date"].iloc[0]
