"""Each kind of bad bar is one clear error naming source, symbol, row and timestamp; nothing is written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsc.config.settings import ValidationSettings
from rsc.data.validate import DataValidationError, check_bars, validate_bars
from rsc.stages import ingest
from rsc.storage import Storage, join
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars


def bad(mutate) -> pd.DataFrame:
    frame = synthetic_bars(20).drop(columns="symbol")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d").astype(object)
    mutate(frame)
    return frame


def set_cell(row: int, column: str, value):
    def mutate(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value(frame) if callable(value) else value

    return mutate


# (mutation, expected message after "<source> [SYN] ") for every failure the issue lists
CASES = {
    "missing_column": (lambda f: f.pop("close"), r"missing column\(s\) \['close'\]"),
    "non_numeric": (set_cell(3, "close", "abc"), r"row 3 \(2015-01-06\): non-numeric close 'abc'"),
    "nan": (set_cell(4, "open", np.nan), r"row 4 \(2015-01-07\): open is nan"),
    "inf": (set_cell(5, "high", np.inf), r"row 5 \(2015-01-08\): high is inf"),
    "duplicate": (set_cell(6, "timestamp", "2015-01-08"), r"row 6 \(2015-01-08\): duplicate timestamp"),
    "unsorted": (set_cell(7, "timestamp", "2014-12-01"), r"row 7 \(2014-12-01\): timestamp earlier than"),
    "unparseable": (
        set_cell(2, "timestamp", "yesterday"),
        r"row 2 \(yesterday\): missing or unparseable timestamp",
    ),
    "non_positive": (set_cell(8, "low", -1.0), r"row 8 \(2015-01-13\): non-positive price"),
    "high_below": (
        set_cell(9, "high", lambda f: f.loc[9, "close"] * 0.5),
        r"row 9 \(2015-01-14\): high below",
    ),
    "low_above": (set_cell(10, "low", lambda f: f.loc[10, "close"] * 2), r"row 10 \(2015-01-15\): low above"),
    "negative_volume": (set_cell(11, "volume", -5.0), r"row 11 \(2015-01-16\): negative volume"),
    "empty": (lambda f: f.__init__(f.iloc[0:0]), r"no bars \(empty input\)"),
    "mixed_zones": (
        set_cell(12, "timestamp", "2015-01-19T00:00:00+00:00"),
        r"row 12 \(2015-01-19T00:00:00\+00:00\): mixed time zones: this stamp is zone-aware while row 0 "
        r"is naive",
    ),
    "naive_intraday": (
        lambda f: f.__setitem__("timestamp", f["timestamp"] + " 15:30"),
        r"row 0 \(2015-01-01 15:30\): intraday timestamp without a time zone.*\(20 rows\)",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_named(case):
    mutate, message = CASES[case]
    with pytest.raises(DataValidationError, match=rf"^bars\.csv \[SYN\]:? {message}"):
        validate_bars(bad(mutate), "bars.csv", "SYN")


@pytest.mark.parametrize("case", CASES)
def test_ingest_of_a_bad_csv_writes_nothing(case, tmp_path):
    mutate, message = CASES[case]
    path = tmp_path / "in" / "SYN.csv"
    path.parent.mkdir()
    bad(mutate).to_csv(path, index=False)
    cfg = smoke_settings(
        tmp_path / "store", "data.source=csv", f"data.path=file://{path}", "data.symbols=[SYN]"
    )
    with pytest.raises(DataValidationError, match=rf"^{re.escape(f'file://{path}')} \[SYN\]:? {message}"):
        ingest.run(cfg)
    assert not (tmp_path / "store").exists()


def test_a_bad_ingest_leaves_the_previous_version_unchanged(tmp_path):
    path = tmp_path / "SYN.csv"
    bad(lambda f: None).to_csv(path, index=False)
    cfg = smoke_settings(tmp_path / "store", "data.source=csv", f"data.path={path}", "data.symbols=[SYN]")
    result = ingest.run(cfg)
    manifest = Path(result.bars_uri.removeprefix("file://")) / "manifest.json"
    before = manifest.read_bytes()
    files = sorted(p.name for p in manifest.parent.rglob("*"))
    bad(set_cell(4, "open", np.nan)).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="open is nan"):
        ingest.run(cfg)
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in manifest.parent.rglob("*")) == files
    assert len(Storage().read_dataset(result.bars_uri)) == 20


def test_ingest_of_many_symbols_records_each_raw_hash(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, symbol in enumerate(["AAA", "BBB", "CCC"]):
        synthetic_bars(30, seed=i).drop(columns="symbol").to_csv(folder / f"{symbol}.csv", index=False)
    cfg = smoke_settings(tmp_path / "store", "data.source=csv", f"data.path={folder}", "data.symbols=['*']")
    result = ingest.run(cfg)
    manifest = Storage().read_manifest(result.bars_uri)
    assert result.symbols == 3 and manifest["rows"] == 90
    assert sorted(manifest["partitions"]) == ["AAA", "BBB", "CCC"]
    assert sorted(manifest["inputs"]) == ["raw/AAA", "raw/BBB", "raw/CCC"]
    assert len(Storage().read_dataset(join(result.bars_uri), symbols=["BBB"])) == 30


def test_report_lists_every_problem_once():
    frame = bad(lambda f: None)
    for mutate in (set_cell(3, "close", "abc"), set_cell(5, "high", np.inf), set_cell(11, "volume", -5.0)):
        mutate(frame)
    _, report = check_bars(frame, "bars.csv", "SYN")
    assert [f.check for f in report.failures] == ["numeric", "finite", "volume"]
    assert [f.row for f in report.failures] == [3, 5, 11]
    with pytest.raises(DataValidationError, match=r"non-numeric close 'abc' \(and 2 more problems\)"):
        validate_bars(frame, "bars.csv", "SYN")


def test_rows_are_counted_and_named_by_the_source_row_number():
    frame = bad(lambda f: None)
    frame.loc[[4, 9, 15], "volume"] = -1.0
    frame.index = frame.index + 100  # e.g. a symbol's rows inside a long file
    with pytest.raises(DataValidationError, match=r"row 104 \(2015-01-07\): negative volume \(3 rows\)"):
        validate_bars(frame, "long.csv", "SYN")


# -- repair policy ---------------------------------------------------------------------------------

REPAIRS = [
    ("numeric", set_cell(3, "close", "abc"), 19),
    ("finite", set_cell(4, "open", np.nan), 20),
    ("duplicates", set_cell(6, "timestamp", "2015-01-08"), 19),
    ("order", set_cell(7, "timestamp", "2014-12-01"), 20),
    ("timestamps", set_cell(2, "timestamp", "yesterday"), 19),
    ("positive", set_cell(8, "low", -1.0), 19),
    ("high", set_cell(9, "high", lambda f: f.loc[9, "close"] * 0.5), 19),
    ("low", set_cell(10, "low", lambda f: f.loc[10, "close"] * 2), 19),
    ("volume", set_cell(11, "volume", -5.0), 19),
]


@pytest.mark.parametrize(("check", "mutate", "rows"), REPAIRS, ids=[r[0] for r in REPAIRS])
def test_repair_policy_fixes_and_logs_a_count(check, mutate, rows, caplog):
    frame = bad(mutate)
    with pytest.raises(DataValidationError):
        validate_bars(frame, "bars.csv", "SYN")
    repaired = validate_bars(frame, "bars.csv", "SYN", ValidationSettings(**{check: "repair"}))
    assert len(repaired) == rows
    assert repaired["timestamp"].is_monotonic_increasing and repaired["timestamp"].is_unique
    assert np.isfinite(repaired[["open", "high", "low", "close", "volume"]].to_numpy()).all()
    assert "repaired 1 row(s): bars.csv [SYN] row" in caplog.text


def test_forward_fill_makes_a_flat_bar_at_the_last_close_and_drops_leading_gaps():
    frame = bad(lambda f: None)
    frame.loc[0, "close"] = np.nan
    frame.loc[5, "open"] = np.nan
    frame.loc[6, "volume"] = np.inf
    out = validate_bars(frame, "bars.csv", "SYN", ValidationSettings(finite="repair"))
    assert out["timestamp"].iloc[0] == pd.Timestamp("2015-01-02")  # row 0 had nothing before it
    flat = out.loc[out.timestamp == "2015-01-08", ["open", "high", "low", "close"]].to_numpy()
    np.testing.assert_array_equal(flat, np.full((1, 4), frame.loc[4, "close"]))
    assert out.loc[out.timestamp == "2015-01-09", "volume"].item() == frame.loc[5, "volume"]


def test_repairs_that_empty_the_input_are_an_error():
    frame = bad(lambda f: f.__setitem__("volume", -1.0))
    with pytest.raises(DataValidationError, match=r"no bars left after repairs"):
        validate_bars(frame, "bars.csv", "SYN", ValidationSettings(volume="repair"))


# -- time zones ------------------------------------------------------------------------------------


def test_zone_aware_intraday_bars_become_utc():
    frame = bad(lambda f: None)
    frame["timestamp"] = pd.date_range(
        "2015-01-02 09:30", periods=20, freq="min", tz="America/New_York"
    ).astype(str)
    out = validate_bars(frame, "intraday.csv", "SYN")
    assert out["timestamp"].iloc[0] == pd.Timestamp("2015-01-02 14:30")
    assert str(out["timestamp"].dtype) == "datetime64[ns]"


def test_zone_aware_daily_bars_keep_their_local_date():
    frame = bad(lambda f: None)
    frame["timestamp"] = pd.bdate_range("2015-07-01", periods=20).tz_localize("Asia/Tokyo")
    out = validate_bars(frame, "daily.parquet", "SYN")
    assert out["timestamp"].iloc[0] == pd.Timestamp("2015-07-01")


def test_good_bars_pass_typed():
    frame = validate_bars(synthetic_bars(10), "ok.csv", "SYN")
    assert str(frame["timestamp"].dtype) == "datetime64[ns]"
    assert frame["close"].dtype == np.float64


TYPED_STAMPS = {
    "dates": pd.bdate_range("2015-01-01", periods=20),
    "utc_minutes": pd.date_range("2015-01-02 14:30", periods=20, freq="min", tz="UTC"),
    "utc_midnights": pd.date_range("2015-01-02", periods=20, freq="D", tz="UTC"),
}


@pytest.mark.parametrize("stamps", TYPED_STAMPS)
def test_clean_bars_come_out_of_the_vectorised_lane_as_the_full_checker_gives_them(stamps):
    """Stamps the reader typed and bars with nothing to report skip the check-by-check pass; what comes
    out is exactly what the full checker makes of the same frame (types, values, order, row count)."""
    from rsc.data.validate import _Checker, _clean

    frame = bad(lambda f: None)
    frame["timestamp"] = TYPED_STAMPS[stamps]
    frame["volume"] = frame["volume"].round().astype(np.int64)  # as a CSV's integer volumes read
    frame.index = frame.index + 7  # the source's row numbers
    fast = _clean(frame)
    assert fast is not None
    full = _Checker(frame, "bars.csv", "SYN", ValidationSettings(), quality=False).run()
    pd.testing.assert_frame_equal(fast, full)
    bars, report = check_bars(frame, "bars.csv", "SYN", quality=False)
    assert report.ok and report.rows_out == 20
    pd.testing.assert_frame_equal(bars, full)


ROW_CASES = [
    "nan",
    "inf",
    "duplicate",
    "unsorted",
    "non_positive",
    "high_below",
    "low_above",
    "negative_volume",
]


@pytest.mark.parametrize("case", ROW_CASES)
def test_each_problem_is_named_when_the_reader_typed_the_dates(case):
    """Dates parsed by the CSV reader reach the same checks and the same words as text dates."""
    mutate, message = CASES[case]
    frame = bad(mutate)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[ns]")
    with pytest.raises(DataValidationError, match=rf"^bars\.csv \[SYN\]:? {message}"):
        validate_bars(frame, "bars.csv", "SYN")


def test_a_quality_finding_names_the_source_row_in_the_vectorised_lane():
    frame = synthetic_bars(300).drop(columns="symbol")
    frame.loc[200:, ["open", "high", "low", "close"]] *= 3.0  # an unadjusted 1:3 reverse split
    frame.index = frame.index + 10
    _, report = check_bars(frame, "bars.csv", "SYN")
    jump = next(f for f in report.warnings if f.check == "jumps")
    assert jump.row == 210 and jump.timestamp == str(frame.loc[210, "timestamp"].date())


def test_bars_newest_first_are_read_oldest_first_and_rows_keep_their_numbers(caplog):
    """A history exported newest first (one order, backwards) is the same bars; rows out of order
    otherwise still fail, naming the setting that sorts them."""
    frame = bad(lambda f: None)
    backwards = frame.iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        validate_bars(backwards, "bars.csv", "SYN"), validate_bars(frame, "bars.csv", "SYN")
    )
    assert "rows newest first: read oldest first" in caplog.text
    backwards.loc[3, "volume"] = -1.0  # the file's row 3 is the bars' 17th
    with pytest.raises(DataValidationError, match=r"row 3 \(2015-01-\d+\): negative volume"):
        validate_bars(backwards, "bars.csv", "SYN")
    with pytest.raises(
        DataValidationError, match=r"not sorted ascending\); data.validation.order=repair would sort"
    ):
        validate_bars(frame.iloc[[0, 2, 1, *range(3, len(frame))]], "bars.csv", "SYN")


def test_the_repair_hint_is_left_out_where_the_repair_would_leave_no_bar():
    frame = bad(lambda f: None)
    frame.loc[3, "timestamp"] = "yesterday"
    with pytest.raises(DataValidationError, match=r"data.validation.timestamps=repair would drop the row"):
        validate_bars(frame, "bars.csv", "SYN")
    frame["timestamp"] = "yesterday"
    with pytest.raises(DataValidationError) as raised:
        validate_bars(frame, "bars.csv", "SYN")
    assert "missing or unparseable timestamp" in str(raised.value) and "repair" not in str(raised.value)
