"""Each indicator against a straightforward reference, and the no-look-ahead property."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsc.core.features import INDICATORS, Bars, IndicatorRef, compute_features


def random_bars(n: int, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    return Bars(open_, high, low, close, rng.uniform(1e6, 2e6, n))


def test_log_return_and_sma_ratio_match_pandas():
    bars = random_bars(300)
    close = pd.Series(bars.close)
    np.testing.assert_allclose(
        INDICATORS["log_return"](bars, 5), np.log(close / close.shift(5)), equal_nan=True
    )
    expected = close / close.rolling(20).mean() - 1
    np.testing.assert_allclose(INDICATORS["sma_ratio"](bars, 20), expected, rtol=1e-10, equal_nan=True)


def test_volatility_matches_pandas_rolling_std():
    bars = random_bars(300)
    returns = np.log(pd.Series(bars.close)).diff()
    expected = returns.rolling(20).std(ddof=1)
    np.testing.assert_allclose(INDICATORS["volatility"](bars, 20), expected, rtol=1e-8, equal_nan=True)


def test_rsi_matches_wilder_loop():
    bars = random_bars(200, seed=3)
    window = 14
    change = np.diff(bars.close)
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gains[:window].mean(), losses[:window].mean()
    expected = [avg_gain / (avg_gain + avg_loss)]
    for gain, loss in zip(gains[window:], losses[window:], strict=True):
        avg_gain = (avg_gain * (window - 1) + gain) / window
        avg_loss = (avg_loss * (window - 1) + loss) / window
        expected.append(avg_gain / (avg_gain + avg_loss))
    got = INDICATORS["rsi"](bars, window)
    assert np.isnan(got[:window]).all()
    np.testing.assert_allclose(got[window:], expected, rtol=1e-10)


def test_rsi_of_a_flat_series_is_neutral():
    flat = Bars(*(np.full(50, 10.0) for _ in range(5)))
    assert np.allclose(INDICATORS["rsi"](flat, 14)[14:], 0.5)


def test_unknown_indicator_is_named():
    with pytest.raises(ValueError, match=r"unknown indicator.*'macd2'"):
        compute_features(random_bars(50), [IndicatorRef("macd2", 3)])


SPECS = [
    IndicatorRef(name, window)
    for name in INDICATORS
    for window in (1, 5, 14)
    if not (name == "volatility" and window == 1)
]


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=30, max_value=150), seed=st.integers(0, 10_000))
def test_no_feature_at_t_changes_when_later_bars_change(cut, seed):
    bars = random_bars(160, seed)
    before = compute_features(bars, SPECS)
    rng = np.random.default_rng(seed + 1)
    shock = rng.uniform(0.5, 2.0, len(bars.close) - cut - 1)
    future = Bars(*(np.concatenate([x[: cut + 1], x[cut + 1 :] * shock]) for x in bars))
    after = compute_features(future, SPECS)
    np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])
