"""Data-quality checks: valid bars that would flatter a backtest are named, by symbol, date and count."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from rsc.cli.main import main
from rsc.config.settings import ValidationSettings
from rsc.data.quality import _years
from rsc.data.validate import DataValidationError, check_bars, validate_bars
from rsc.stages import ingest
from rsc.storage import Storage
from rsc.storage.layout import RunLayout
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars

SP500 = resources.files("rsc.data") / "samples" / "sp500_daily.csv"


def warnings_of(frame: pd.DataFrame, **policy) -> dict[str, str]:
    bars, report = check_bars(frame, "test.csv", "SYN", ValidationSettings(**policy))
    assert bars is not None and report.ok
    return {w.check: str(w) for w in report.warnings}


def raw(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="symbol")


def hourly_sessions(days: int) -> pd.DatetimeIndex:
    """Seven hourly bars (14:00-20:00 UTC) on each of ``days`` weekdays."""
    dates = pd.bdate_range("2015-01-05", periods=days)
    return pd.DatetimeIndex([d + pd.Timedelta(hours=14 + h) for d in dates for h in range(7)], tz="UTC")


def test_clean_bars_have_no_warnings():
    assert warnings_of(raw(synthetic_bars(600))) == {}


def test_stale_opens_name_the_years_and_advise_a_fill():
    frame = raw(synthetic_bars(600))  # 2015-01-01 onwards: 2015, 2016, 2017
    in_2016 = frame["timestamp"].dt.year.to_numpy()[1:] == 2016
    opens = frame["open"].to_numpy().copy()
    opens[1:][in_2016] = frame["close"].to_numpy()[:-1][in_2016]  # 2016's opens copy the last close
    frame["open"] = opens
    frame["high"] = np.maximum(frame["high"], frame["open"])
    frame["low"] = np.minimum(frame["low"], frame["open"])
    found = warnings_of(frame)
    assert list(found) == ["stale_opens"]
    assert "1 year(s) (2016 100%)" in found["stale_opens"]
    assert "env.fill=next_close" in found["stale_opens"] and "row 261 (2016-01-01" in found["stale_opens"]
    assert warnings_of(frame, stale_open_share=1.0) == {}  # the share is a setting


def test_zero_volume_runs_are_counted():
    frame = raw(synthetic_bars(200))
    frame.loc[50:56, "volume"] = 0.0  # 7 bars
    frame.loc[100:102, "volume"] = 0.0  # 3 bars: under the limit
    found = warnings_of(frame)
    assert list(found) == ["zero_volume"]
    assert "1 run(s) of 5 or more bars" in found["zero_volume"] and "longest 7" in found["zero_volume"]
    assert "row 50" in found["zero_volume"]


def test_a_price_jump_is_named_as_a_likely_split():
    frame = raw(synthetic_bars(300))
    frame.loc[150:, ["open", "high", "low", "close"]] /= 2.0  # an unadjusted 2:1 split
    found = warnings_of(frame)
    assert list(found) == ["jumps"]
    assert "move of -69." in found["jumps"] and "2:1 split" in found["jumps"] and "row 150" in found["jumps"]
    frame = raw(synthetic_bars(300))
    frame.loc[150:, ["open", "high", "low", "close"]] *= 1.37  # not a split ratio
    assert "bad print" in warnings_of(frame)["jumps"]


@pytest.mark.parametrize(
    ("stamps", "drop", "unit"),
    [
        (pd.bdate_range("2015-01-01", periods=300), range(100, 106), "weekday sessions"),
        (pd.date_range("2015-01-01", periods=300, freq="D"), range(100, 106), "daily sessions"),  # 24/7
        (hourly_sessions(60), range(7 * 30, 7 * 36), "weekday sessions"),  # six whole days of hours
        (pd.date_range("2000-01-31", periods=120, freq="ME"), range(60, 66), "bars"),  # monthly
    ],
    ids=["weekdays", "24/7", "hourly", "monthly"],
)
def test_missing_sessions_against_the_implied_calendar(stamps, drop, unit):
    frame = raw(synthetic_bars(len(stamps)))
    frame["timestamp"] = stamps.strftime("%Y-%m-%dT%H:%M:%S%z") if stamps.tz else stamps
    holiday = list(drop)[: len(drop) // 6]  # one session (or one month) missing is normal
    assert "missing_sessions" not in warnings_of(frame.drop(index=holiday))
    found = warnings_of(frame.drop(index=list(drop)))
    assert f"1 gap(s) of more than 4 {unit}" in found["missing_sessions"]
    assert "largest 6 missing" in found["missing_sessions"] or unit == "bars"
    assert f"row {max(drop) + 1} " in found["missing_sessions"]  # named at the first bar after the gap


def test_quality_policy_fail_refuses_and_off_is_silent():
    frame = raw(synthetic_bars(200))
    frame.loc[50:60, "volume"] = 0.0
    with pytest.raises(DataValidationError, match=r"test.csv \[SYN\] row 50 .*zero volume"):
        validate_bars(frame, "test.csv", "SYN", ValidationSettings(quality="fail"))
    _, report = check_bars(frame, "test.csv", "SYN", ValidationSettings(quality="off"))
    assert report.findings == []
    assert len(validate_bars(frame, "test.csv", "SYN")) == 200  # warn: the bars still pass


def test_validate_prints_the_bundled_sample_stale_open_years(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["data", "validate", str(SP500)]) == 0  # a warning is not a failure
    out = " ".join(capsys.readouterr().out.split())
    assert "warning" in out and "stale_opens" in out
    for year in range(1999, 2006):
        assert f"{year} 9" in out  # 95-98% in each of 1999-2005
    assert "2012" not in out  # about 25% there: under the 50% default
    assert "1 data-quality warning(s)" in out


def test_ingest_records_the_warnings_of_the_bars_it_keeps(tmp_path):
    args = ("data.source=csv", f"data.path=file://{SP500}", "data.symbols=[SP]")
    dates = ("split.train_end=2006-06-30", "split.validation_end=2006-12-31")
    cfg = smoke_settings(tmp_path / "a", *args, *dates, "data.start=2004-01-01", "data.end=2007-12-31")
    ingest.run(cfg)
    stored = Storage().read_json(RunLayout(cfg.run_root).quality)
    (warning,) = stored["warnings"]
    assert warning["check"] == "stale_opens" and "2 year(s) (2004 98%, 2005 96%)" in warning["finding"]
    dates = ("split.train_end=2015-06-30", "split.validation_end=2015-12-31")
    cfg = smoke_settings(tmp_path / "b", *args, *dates, "data.start=2014-01-01", "data.end=2016-12-31")
    ingest.run(cfg)
    assert Storage().read_json(RunLayout(cfg.run_root).quality)["warnings"] == []


def test_years_of_sorted_stamps_are_their_calendar_years():
    stamps = np.array(
        ["1969-12-31T23:59:59", "1970-01-01", "1999-12-31T23:59:59.999", "2000-01-01", "2003-07-01T12:00"],
        "datetime64[ns]",
    )
    np.testing.assert_array_equal(_years(stamps), [1969, 1970, 1999, 2000, 2003])
