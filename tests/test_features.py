"""Each indicator against a straightforward reference, the warm-up, specs, and the no-look-ahead property."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsc.config.settings import FeatureSettings, IndicatorSpec
from rsc.core.features import (
    INDICATORS,
    Bars,
    IndicatorRef,
    compute_feature_columns,
    compute_features,
    feature_names,
    rolling_moments,
    warmup_bars,
)
from rsc.data.features import add_features, add_features_table, indicator_refs
from tests.helpers import synthetic_bars


def random_bars(n: int, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    return Bars(open_, high, low, close, rng.uniform(1e6, 2e6, n))


def indicator(name: str, bars: Bars, window: int, **params) -> np.ndarray:
    return compute_features(bars, [IndicatorRef.of(name, window, params)])[:, 0]


# -- references: plain loops, written from the textbook definitions -------------------------------


def loop_smooth(x: list[float], window: int, alpha: float) -> list[float]:
    """Seed with the mean of the first ``window`` values, then y += alpha * (x - y)."""
    out = [float("nan")] * len(x)
    value = sum(x[:window]) / window
    out[window - 1] = value
    for t in range(window, len(x)):
        value = value + alpha * (x[t] - value)
        out[t] = value
    return out


def loop_ema(x, window):
    return loop_smooth(list(x), window, 2 / (window + 1))


def loop_true_range(bars: Bars) -> list[float]:
    return [
        max(bars.high[t], bars.close[t - 1]) - min(bars.low[t], bars.close[t - 1])
        for t in range(1, len(bars.close))
    ]


def test_log_return_and_sma_ratio_match_pandas():
    bars = random_bars(300)
    close = pd.Series(bars.close)
    np.testing.assert_allclose(
        indicator("log_return", bars, 5), np.log(close / close.shift(5)), equal_nan=True
    )
    expected = close / close.rolling(20).mean() - 1
    np.testing.assert_allclose(indicator("sma_ratio", bars, 20), expected, rtol=1e-10, equal_nan=True)


def test_ema_ratio_matches_loop():
    bars = random_bars(200, seed=1)
    expected = bars.close / np.array(loop_ema(bars.close, 10)) - 1
    np.testing.assert_allclose(
        indicator("ema_ratio", bars, 10), expected, rtol=1e-10, atol=1e-12, equal_nan=True
    )


def test_volatility_matches_pandas_rolling_std():
    bars = random_bars(300)
    returns = np.log(pd.Series(bars.close)).diff()
    expected = returns.rolling(20).std(ddof=1)
    np.testing.assert_allclose(indicator("volatility", bars, 20), expected, rtol=1e-8, equal_nan=True)


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
    got = indicator("rsi", bars, window)
    assert np.isnan(got[:window]).all()
    np.testing.assert_allclose(got[window:], expected, rtol=1e-10)


def test_rsi_of_a_flat_series_is_neutral():
    flat = Bars(*(np.full(50, 10.0) for _ in range(5)))
    assert np.allclose(indicator("rsi", flat, 14)[14:], 0.5)


def test_macd_lines_match_loop():
    bars = random_bars(250, seed=4)
    fast, slow, sig = 12, 26, 9
    line = np.array(loop_ema(bars.close, fast)) - np.array(loop_ema(bars.close, slow))
    signal = np.full(len(line), np.nan)
    signal[slow - 1 :] = loop_ema(line[slow - 1 :], sig)
    got = {
        name: indicator(name, bars, slow, fast=fast, signal=sig)
        for name in ("macd", "macd_signal", "macd_hist")
    }
    np.testing.assert_allclose(got["macd"], line / bars.close, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["macd_signal"], signal / bars.close, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(
        got["macd_hist"], (line - signal) / bars.close, rtol=1e-9, atol=1e-15, equal_nan=True
    )


def test_macd_fast_must_be_shorter_than_slow():
    with pytest.raises(ValueError, match=r"fast \(30\) must be shorter than the slow window \(26\)"):
        indicator("macd", random_bars(60), 26, fast=30)


def test_bollinger_matches_pandas():
    bars = random_bars(120, seed=5)
    close = pd.Series(bars.close)
    mid, sd = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    upper, lower = mid + 2.5 * sd, mid - 2.5 * sd
    np.testing.assert_allclose(
        indicator("bollinger_b", bars, 20, k=2.5),
        (close - lower) / (upper - lower),
        rtol=1e-9,
        equal_nan=True,
    )
    np.testing.assert_allclose(
        indicator("bollinger_width", bars, 20, k=2.5), (upper - lower) / mid, rtol=1e-9, equal_nan=True
    )


def test_atr_matches_wilder_loop():
    bars = random_bars(150, seed=6)
    window = 14
    tr = loop_true_range(bars)
    expected = [float("nan"), *loop_smooth(tr, window, 1 / window)]
    np.testing.assert_allclose(
        indicator("atr", bars, window), np.array(expected) / bars.close, rtol=1e-10, equal_nan=True
    )


def test_adx_and_directional_indicators_match_wilder_loop():
    bars = random_bars(200, seed=7)
    n = 14
    plus_dm, minus_dm = [], []
    for t in range(1, len(bars.close)):
        up, down = bars.high[t] - bars.high[t - 1], bars.low[t - 1] - bars.low[t]
        plus_dm.append(up if up > down and up > 0 else 0.0)
        minus_dm.append(down if down > up and down > 0 else 0.0)
    tr = loop_smooth(loop_true_range(bars), n, 1 / n)
    plus = [p / r for p, r in zip(loop_smooth(plus_dm, n, 1 / n), tr, strict=True)]
    minus = [m / r for m, r in zip(loop_smooth(minus_dm, n, 1 / n), tr, strict=True)]
    dx = [abs(p - m) / (p + m) for p, m in zip(plus[n - 1 :], minus[n - 1 :], strict=True)]
    adx = [float("nan")] * (n - 1) + loop_smooth(dx, n, 1 / n)
    np.testing.assert_allclose(indicator("plus_di", bars, n)[1:], plus, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(indicator("minus_di", bars, n)[1:], minus, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(indicator("adx", bars, n)[1:], adx, rtol=1e-9, equal_nan=True)


def test_aroon_matches_loop():
    bars = random_bars(80, seed=8)
    n = 14
    up, down = np.full(80, np.nan), np.full(80, np.nan)
    for t in range(n, 80):
        highs, lows = list(bars.high[t - n : t + 1]), list(bars.low[t - n : t + 1])
        since_high = n - max(i for i, v in enumerate(highs) if v == max(highs))
        since_low = n - max(i for i, v in enumerate(lows) if v == min(lows))
        up[t], down[t] = (n - since_high) / n, (n - since_low) / n
    np.testing.assert_array_equal(indicator("aroon_up", bars, n), up)
    np.testing.assert_array_equal(indicator("aroon_down", bars, n), down)
    np.testing.assert_allclose(indicator("aroon_osc", bars, n), up - down, equal_nan=True)


def test_aroon_takes_a_nan_as_the_extreme():
    """A NaN in the window counts as its extreme (the latest NaN if several), as np.argmax has it."""
    bars = random_bars(80, seed=10)
    holes = np.zeros(80, bool)
    holes[[20, 30, 31, 60]] = True
    bars = bars._replace(high=np.where(holes, np.nan, bars.high), low=np.where(holes, np.nan, bars.low))
    n = 6
    up, down = np.full(80, np.nan), np.full(80, np.nan)
    for t in range(n, 80):
        for values, out, pick in ((bars.high, up, np.argmax), (bars.low, down, np.argmin)):
            newest_first = values[t - n : t + 1][::-1]
            since = (
                np.flatnonzero(np.isnan(newest_first))[0]
                if np.isnan(newest_first).any()
                else pick(newest_first)
            )
            out[t] = (n - since) / n
    np.testing.assert_array_equal(indicator("aroon_up", bars, n), up)
    np.testing.assert_array_equal(indicator("aroon_down", bars, n), down)


def test_rolling_moments_are_exact_per_window_on_a_long_series():
    """Each window is summed on its own: no running-sum drift at the end of a long, high series."""
    rng = np.random.default_rng(12)
    x = 1e6 + np.cumsum(rng.normal(0, 1, 200_000))
    mean, std = rolling_moments(x, 20)
    for t in (19, 1_000, 199_999):
        window = x[t - 19 : t + 1]
        assert mean[t] == pytest.approx(window.mean(), rel=1e-15)
        assert std[t] == pytest.approx(window.std(ddof=1), rel=1e-12)
    assert np.isnan(mean[:19]).all() and np.isnan(std[:19]).all()


def test_rolling_moments_of_a_block_are_each_rows_own():
    rng = np.random.default_rng(13)
    block = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (4, 500)), axis=1))
    late = np.where(np.arange(500) < 30, np.nan, block[1])  # a row whose warm-up differs
    for x in (block, np.stack([block[0], late])):
        together = rolling_moments(x, 20, ddof=0)
        for row, mean, std in zip(x, *together, strict=True):
            alone = rolling_moments(row, 20, ddof=0)
            np.testing.assert_array_equal(mean, alone[0])
            np.testing.assert_array_equal(std, alone[1])


def test_volume_z_matches_pandas_and_is_zero_when_flat():
    bars = random_bars(100, seed=9)
    volume = pd.Series(bars.volume)
    expected = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
    np.testing.assert_allclose(indicator("volume_z", bars, 20), expected, rtol=1e-8, equal_nan=True)
    flat = Bars(*(np.full(30, 10.0) for _ in range(5)))
    assert np.allclose(indicator("volume_z", flat, 20)[19:], 0.0)


# -- specs -----------------------------------------------------------------------------------------

ALL_REFS = [
    *(
        IndicatorRef.of(name, w)
        for name in INDICATORS
        if not name.startswith(("macd", "bollinger"))
        for w in (2, 5, 14)
    ),
    *(IndicatorRef.of(name, 26, {"fast": 12, "signal": 9}) for name in ("macd", "macd_signal", "macd_hist")),
    IndicatorRef.of("macd", 10, {"fast": 3, "signal": 4}),
    IndicatorRef.of("bollinger_b", 20, {"k": 2}),
    IndicatorRef.of("bollinger_width", 10, {"k": 1.5}),
]


def test_every_indicator_is_covered_by_the_property_test():
    assert {ref.name for ref in ALL_REFS} == set(INDICATORS)


@pytest.mark.parametrize("ref", ALL_REFS, ids=lambda r: r.column)
def test_warmup_is_exactly_the_leading_nans(ref):
    values = compute_features(random_bars(120, seed=2), [ref])[:, 0]
    assert np.isnan(values[: ref.first_valid]).all()
    assert np.isfinite(values[ref.first_valid :]).all()


def test_indicators_sharing_intermediates_get_what_they_get_alone():
    """One call computes the MACD lines, DMI, ATR and the Bollinger moments once for all the
    indicators that use them; each still gets exactly its own values, as from its kernel alone."""
    refs = [*ALL_REFS, IndicatorRef.of("bollinger_b", 10, {"k": 1}), IndicatorRef.of("atr", 14)]
    bars = random_bars(200, seed=11)
    together = compute_feature_columns(bars, refs)
    for ref, values in zip(refs, together, strict=True):
        np.testing.assert_array_equal(values, compute_features(bars, [ref])[:, 0])
        np.testing.assert_array_equal(
            values, INDICATORS[ref.name].kernel(bars, ref.window, **ref.resolved_params())
        )
    other = random_bars(200, seed=12)  # a later call on other bars reuses nothing
    np.testing.assert_array_equal(
        compute_features(other, refs), np.stack([compute_features(other, [r])[:, 0] for r in refs], axis=-1)
    )


def test_warmup_bars_is_the_longest_warmup():
    refs = [IndicatorRef.of("rsi", 14), IndicatorRef.of("adx", 14), IndicatorRef.of("macd", 26)]
    assert warmup_bars(refs) == 2 * 14  # ADX: 2n - 1 is its first index, so 2n bars


def test_column_names_are_stable_and_defaults_are_spelled_out():
    assert IndicatorRef("rsi", 14).column == "rsi_14"
    assert IndicatorRef("macd", 26).column == "macd_26_fast12_signal9"
    assert IndicatorRef.of("macd", 26, {"signal": 9, "fast": 12}).column == "macd_26_fast12_signal9"
    assert IndicatorRef.of("bollinger_b", 20, {"k": 2.5}).column == "bollinger_b_20_k2.5"


def test_specs_round_trip_through_json():
    for ref in ALL_REFS:
        again = IndicatorRef.from_dict(json.loads(json.dumps(ref.to_dict())))
        assert again.column == ref.column
        np.testing.assert_array_equal(
            compute_features(random_bars(60), [again]), compute_features(random_bars(60), [ref])
        )
    assert IndicatorRef.from_dict({"name": "rsi", "window": 14}).column == "rsi_14"  # older policy.json


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("macd2", {}, r"unknown indicator.*'macd2'"),
        ("macd", {"slow": 3}, r"'macd': unknown parameter\(s\) \['slow'\]; known: \['fast', 'signal'\]"),
        ("macd", {"fast": 2.5}, r"'macd': fast must be a positive integer, got 2.5"),
    ],
)
def test_bad_specs_are_named(name, params, message):
    with pytest.raises(ValueError, match=message):
        IndicatorRef.of(name, 14, params)


def test_unknown_indicator_is_named_by_compute_features():
    with pytest.raises(ValueError, match=r"unknown indicator.*'macd2'"):
        compute_features(random_bars(50), [IndicatorRef("macd2", 3)])


def test_settings_params_reach_the_kernels():
    settings = FeatureSettings(indicators=(IndicatorSpec(name="bollinger_b", window=20, params={"k": 1.0}),))
    assert feature_names(indicator_refs(settings)) == ["bollinger_b_20_k1"]
    frame = add_features(synthetic_bars(80), settings)
    expected = indicator("bollinger_b", Bars.from_columns(synthetic_bars(80)), 20, k=1.0)[19:]
    np.testing.assert_allclose(frame["bollinger_b_20_k1"], expected)


# -- no look-ahead ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=30, max_value=150), seed=st.integers(0, 10_000))
def test_no_feature_at_t_changes_when_later_bars_change(cut, seed):
    bars = random_bars(160, seed)
    before = compute_features(bars, ALL_REFS)
    rng = np.random.default_rng(seed + 1)
    shock = rng.uniform(0.5, 2.0, (5, len(bars.close) - cut - 1))
    future = Bars(
        *(np.concatenate([x[: cut + 1], x[cut + 1 :] * s]) for x, s in zip(bars, shock, strict=True))
    )
    after = compute_features(future, ALL_REFS)
    np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])
    assert not np.array_equal(before[cut + 1 :], after[cut + 1 :])  # the shock did reach the future


def test_served_policy_computes_the_same_features_as_the_features_stage():
    """policy.json's specs rebuild refs that give the training features bit for bit (C17)."""
    import torch

    from rsc.registry.policy import Policy

    settings = FeatureSettings(
        indicators=(
            IndicatorSpec(name="macd_hist", window=26, params={"fast": 12, "signal": 9}),
            IndicatorSpec(name="adx", window=14),
            IndicatorSpec(name="bollinger_b", window=20, params={"k": 2}),
        )
    )
    refs = indicator_refs(settings)
    spec = json.loads(
        json.dumps(
            {
                "indicators": [ref.to_dict() for ref in refs],
                "window": 5,
                "positions": [0.0, 1.0],
                "scaler": {"mean": [0.0] * 3, "std": [1.0] * 3},
            }
        )
    )
    policy = Policy(torch.jit.script(torch.nn.Linear(16, 2)), spec)
    bars = synthetic_bars(120)
    trained = add_features(bars, settings)[feature_names(refs)].to_numpy()
    assert policy.feature_names == feature_names(refs)
    np.testing.assert_array_equal(policy.features_from_bars(Bars.from_columns(bars)), trained[-5:])


def test_seed_indicator_overlay_loads_and_computes():
    from rsc.config import load_settings
    from tests.conftest import CONFIGS

    cfg = load_settings([CONFIGS / "base.yaml", CONFIGS / "features_seed.yaml"])
    refs = indicator_refs(cfg.features)
    assert {r.name for r in refs} == set(INDICATORS)
    frame = add_features(synthetic_bars(200), cfg.features)
    assert len(frame) == 200 - warmup_bars(refs) + 1
    assert np.isfinite(frame[feature_names(refs)].to_numpy()).all()


def test_symbols_computed_together_get_exactly_their_own_values():
    refs = [IndicatorRef.of(name, 30 if name.startswith("macd") else 7) for name in INDICATORS]
    many = [random_bars(300, seed) for seed in range(5)]
    many[2] = many[2]._replace(volume=np.where(np.arange(300) < 150, 5.0, many[2].volume))  # flat runs
    together = compute_features(Bars(*(np.stack(arrays) for arrays in zip(*many, strict=True))), refs)
    assert together.shape == (5, 300, len(refs))
    for one, values in zip(many, together, strict=True):
        np.testing.assert_array_equal(values, compute_features(one, refs))


def test_rows_whose_warmups_differ_are_computed_row_by_row():
    bars = random_bars(60)
    late = Bars(*(np.where(np.arange(60) < 10, np.nan, x) for x in bars))  # a row that starts later
    refs = [IndicatorRef.of(name, 5) for name in ("sma_ratio", "ema_ratio", "rsi", "volatility", "adx")]
    together = compute_features(Bars(*(np.stack(pair) for pair in zip(bars, late, strict=True))), refs)
    np.testing.assert_array_equal(together[0], compute_features(bars, refs))
    np.testing.assert_array_equal(together[1], compute_features(late, refs))


def test_add_features_sorts_only_bars_out_of_order():
    """Bars in symbol and time order (as read from the dataset) give the same frame as shuffled ones."""
    settings = FeatureSettings(
        indicators=[IndicatorSpec(name="rsi", window=5), IndicatorSpec(name="adx", window=3)]
    )
    ordered = pd.concat(
        [synthetic_bars(60, seed=i, symbol=s) for i, s in enumerate("ABC")], ignore_index=True
    )
    expected = add_features(ordered, settings)
    assert expected["symbol"].is_monotonic_increasing and len(expected) == 3 * (60 - 5)
    shuffled = ordered.sample(frac=1, random_state=0)
    pd.testing.assert_frame_equal(add_features(shuffled, settings), expected)
    late = ordered.copy()
    late.loc[[70, 71], "timestamp"] = late.loc[[71, 70], "timestamp"].to_numpy()  # two of B's bars swapped
    swapped = add_features(late, settings)
    np.testing.assert_array_equal(swapped["timestamp"], expected["timestamp"])
    assert not swapped.equals(expected)  # B's bars were taken in time order, so its values changed
    pd.testing.assert_frame_equal(add_features(ordered.iloc[:0], settings), expected.iloc[:0])


def test_add_features_of_symbols_of_several_lengths_matches_each_symbol_alone(monkeypatch):
    monkeypatch.setattr("rsc.data.features.BLOCK_BARS", 500)  # several blocks, several threads
    settings = FeatureSettings(
        indicators=[IndicatorSpec(name="rsi", window=14), IndicatorSpec(name="atr", window=5)]
    )
    frames = [synthetic_bars(n, seed=i, symbol=f"S{i}") for i, n in enumerate((200, 200, 200, 120, 200, 40))]
    out = add_features(pd.concat(frames[::-1], ignore_index=True), settings)
    refs = indicator_refs(settings)
    for frame in frames:
        symbol = frame["symbol"].iloc[0]
        alone = compute_features(Bars.from_columns({c: frame[c].to_numpy() for c in Bars._fields}), refs)
        expected = alone[~np.isnan(alone).any(axis=1)]
        np.testing.assert_array_equal(
            out.loc[out["symbol"] == symbol, feature_names(refs)].to_numpy(), expected
        )


def test_add_features_of_a_table_is_add_features_of_its_frame(monkeypatch):
    """The stage's Arrow path gives the frame path's rows and values: in order, shuffled, with bars out of
    time order, of several lengths over several blocks, and empty."""
    monkeypatch.setattr("rsc.data.features.BLOCK_BARS", 500)
    settings = FeatureSettings(
        indicators=[IndicatorSpec(name="rsi", window=14), IndicatorSpec(name="adx", window=3)]
    )
    lengths = (200, 200, 120, 200, 40)
    ordered = pd.concat(
        [synthetic_bars(n, seed=i, symbol=f"S{i}") for i, n in enumerate(lengths)], ignore_index=True
    )
    late = ordered.copy()
    late.loc[[70, 71], "timestamp"] = late.loc[[71, 70], "timestamp"].to_numpy()
    for bars in (ordered, ordered.sample(frac=1, random_state=0), late, ordered.iloc[:0]):
        table = add_features_table(pa.Table.from_pandas(bars, preserve_index=False), settings)
        pd.testing.assert_frame_equal(table.to_pandas(), add_features(bars, settings))
