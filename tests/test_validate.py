"""Each kind of bad bar is one clear error naming source, symbol and row."""

import numpy as np
import pytest

from rsc.data.validate import DataValidationError, validate_bars
from tests.helpers import synthetic_bars


def bad(mutate):
    frame = synthetic_bars(20)
    mutate(frame)
    return frame


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.pop("volume"), r"^bars.csv \[SYN\]: missing column\(s\) \['volume'\]"),
        (
            lambda f: f.__setitem__("close", f["close"].astype(object).where(f.index != 3, "n/a")),
            r"row 3 .*non-numeric close 'n/a'",
        ),
        (lambda f: f.loc.__setitem__((4, "open"), np.nan), r"row 4 .*open is nan"),
        (lambda f: f.loc.__setitem__((5, "high"), np.inf), r"row 5 .*high is inf"),
        (
            lambda f: f.loc.__setitem__((6, "timestamp"), f.loc[5, "timestamp"]),
            r"row 6 .*duplicate timestamp",
        ),
        (
            lambda f: f.loc.__setitem__((7, "timestamp"), f.loc[2, "timestamp"] - np.timedelta64(30, "D")),
            r"row 7 .*not sorted",
        ),
        (lambda f: f.loc.__setitem__((8, "low"), -1.0), r"row 8 .*non-positive price"),
        (lambda f: f.loc.__setitem__((9, "high"), f.loc[9, "close"] * 0.5), r"row 9 .*high below"),
        (lambda f: f.loc.__setitem__((10, "low"), f.loc[10, "close"] * 2), r"row 10 .*low above"),
        (lambda f: f.loc.__setitem__((11, "volume"), -5.0), r"row 11 .*negative volume"),
    ],
)
def test_bad_bars_are_named(mutate, message):
    with pytest.raises(DataValidationError, match=message):
        validate_bars(bad(mutate), "bars.csv", "SYN")


def test_empty_input():
    with pytest.raises(DataValidationError, match=r"bars.csv \[SYN\]: no bars"):
        validate_bars(synthetic_bars(5).iloc[0:0], "bars.csv", "SYN")


def test_good_bars_pass_typed():
    frame = validate_bars(synthetic_bars(10), "ok.csv", "SYN")
    assert str(frame["timestamp"].dtype) == "datetime64[ns]"
    assert frame["close"].dtype == np.float64
