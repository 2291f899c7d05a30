"""Every metric against a small hand-computed reference, plus the edge cases that must not crash."""

import math

import numpy as np
import pytest

from rsc.config.settings import EvaluateSettings
from rsc.core import metrics

# Returns 10%, -10%, 10%, 10% from 100: mean 0.05, deviations (0.05, -0.15, 0.05, 0.05), sum of squares
# 0.03, sample variance 0.01, sample std 0.1. With 4 bars per year the 4 returns span exactly one year.
CURVE = np.array([100.0, 110.0, 99.0, 108.9, 119.79])
P = 4.0
SHORT = 2  # min_periods for these tiny hand examples


def test_return_figures():
    assert metrics.total_return(CURVE) == pytest.approx(0.1979)
    assert metrics.cagr(CURVE, P, SHORT) == pytest.approx(0.1979)  # one year: CAGR = total return
    assert metrics.cagr(CURVE, 2.0, SHORT) == pytest.approx(1.1979**0.5 - 1)  # two years
    assert metrics.annual_volatility(CURVE, P, SHORT) == pytest.approx(0.1 * 2)


def test_sharpe_and_sortino():
    assert metrics.sharpe(CURVE, P, 0.0, SHORT) == pytest.approx(0.05 / 0.1 * 2)
    # rf 4% a year = 1% a bar: excess mean 0.04, same std.
    assert metrics.sharpe(CURVE, P, 0.04, SHORT) == pytest.approx(0.04 / 0.1 * 2)
    # Downside deviation over all 4 returns: sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05.
    assert metrics.sortino(CURVE, P, 0.0, SHORT) == pytest.approx(0.05 / 0.05 * 2)
    # Target 1% a bar: shortfalls (0, -0.11, 0, 0): sqrt(0.0121 / 4) = 0.055; excess mean 0.04.
    assert metrics.sortino(CURVE, P, 0.04, SHORT) == pytest.approx(0.04 / 0.055 * 2)


def test_drawdown_figures():
    np.testing.assert_allclose(metrics.drawdowns(CURVE), [0, 0, 0.1, 0.01, 0], atol=1e-12)
    assert metrics.max_drawdown(CURVE) == pytest.approx(0.1)
    # Peak at bar 1, back above it at bar 4: 3 bars.
    assert metrics.max_drawdown_duration(CURVE) == 3
    # Never recovers: from the peak (bar 1) to the last bar (3) is 2 bars.
    assert metrics.max_drawdown_duration(CURVE[:4]) == 2
    assert metrics.calmar(CURVE, P, SHORT) == pytest.approx(0.1979 / 0.1)


def test_higher_moments_and_tail_risk():
    returns = metrics.bar_returns(CURVE)
    # m2 = 0.03 / 4, m3 = (3 * 0.05**3 - 0.15**3) / 4, m4 = (3 * 0.05**4 + 0.15**4) / 4.
    assert metrics.skew(returns) == pytest.approx(-2 / math.sqrt(3))
    assert metrics.kurtosis(returns) == pytest.approx(7 / 3 - 3)
    # Sorted (-0.1, 0.1, 0.1, 0.1); the 5% quantile sits 0.15 of the way from -0.1 to 0.1: -0.07.
    assert metrics.value_at_risk(returns) == pytest.approx(0.07)
    assert metrics.conditional_value_at_risk(returns) == pytest.approx(0.1)


def test_trade_figures():
    pnl = np.array([100.0, -50.0, 30.0, -20.0])
    ret = np.array([0.02, -0.01, 0.005, -0.004])
    assert metrics.win_rate(pnl) == 0.5
    assert metrics.profit_factor(pnl) == pytest.approx(130 / 70)
    assert metrics.average_win(ret) == pytest.approx(0.0125)
    assert metrics.average_loss(ret) == pytest.approx(-0.007)


def test_turnover_and_exposure():
    equity = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    notional = np.array([0.0, 100.0, 0.0, 100.0, 0.0])  # in and out once over 4 bars = 1 year at P=4
    assert metrics.turnover(notional, equity, P, SHORT) == pytest.approx(2.0)
    assert metrics.turnover(notional, equity, 8.0, SHORT) == pytest.approx(4.0)  # same trades in half a year
    assert metrics.exposure(np.array([0.0, 1.0, 1.0, 0.0, 0.0])) == 0.5
    assert metrics.exposure(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])) == 0.5


def test_alpha_beta_information_ratio():
    market = np.array([0.01, -0.02, 0.03, 0.00])
    strategy = 2 * market + 0.001  # beta 2, alpha 0.001 a bar
    assert metrics.beta(strategy, market) == pytest.approx(2.0)
    assert metrics.alpha(strategy, market, P, 0.0, SHORT) == pytest.approx(0.004)
    # Active return = market + 0.001: mean 0.006; std of the market: sqrt(0.0013 / 3).
    assert metrics.information_ratio(strategy, market, P, SHORT) == pytest.approx(
        0.006 / math.sqrt(0.0013 / 3) * 2
    )
    to_curve = lambda r: 100 * np.cumprod(np.concatenate(([1.0], 1 + r)))  # noqa: E731
    same = metrics.relative(to_curve(market), to_curve(market), P, 0.0, SHORT)
    assert same == pytest.approx({"alpha": 0.0, "beta": 1.0, "information_ratio": 0.0})
    with pytest.raises(ValueError, match="different lengths"):
        metrics.relative(to_curve(market), to_curve(market[:2]), P)


def test_rolling_sharpe_matches_a_direct_window():
    rng = np.random.default_rng(0)
    equity = 100 * np.cumprod(1 + rng.normal(0.001, 0.01, 60))
    rolled = metrics.rolling_sharpe(equity, 20, 252.0, 0.02)
    assert np.isnan(rolled[:20]).all()
    for t in (20, 35, 59):
        assert rolled[t] == pytest.approx(metrics.sharpe(equity[t - 20 : t + 1], 252.0, 0.02, 20))


def test_minimum_sample_for_annualised_figures():
    rng = np.random.default_rng(1)
    equity = 100 * np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0.001, 0.01, 25))))
    for name in ("cagr", "annual_volatility", "sharpe", "sortino", "calmar"):
        assert metrics.summary(equity[:20])[name] == 0.0, name  # 19 returns
        assert metrics.summary(equity[:21])[name] != 0.0, name  # 20 returns
    assert metrics.summary(equity[:20])["total_return"] != 0.0  # not annualised: always reported


def test_settings_default_minimum_is_the_core_one():
    assert EvaluateSettings().min_periods == metrics.MIN_PERIODS


def _activity(n: int, pnl=(), units=None) -> metrics.Activity:
    pnl = np.asarray(pnl, dtype=float)
    return metrics.Activity(pnl, pnl / 100, np.zeros(n), np.zeros(n) if units is None else units, np.zeros(n))


@pytest.mark.parametrize(
    ("name", "equity", "pnl"),
    [
        ("no trades", np.full(30, 100.0), []),
        ("zero variance", 100 * 1.01 ** np.arange(30), [30.0]),
        ("all losses", 100 * 0.99 ** np.arange(30), [-5.0, -3.0]),
        ("one bar", np.array([100.0]), []),
        ("two bars", np.array([100.0, 101.0]), [1.0]),
        ("empty", np.array([]), []),
    ],
)
def test_edge_cases_give_finite_defined_values(name, equity, pnl):
    figures = metrics.summary(equity, 252.0, 0.0, activity=_activity(len(equity), pnl))
    assert all(math.isfinite(v) for v in figures.values()), (name, figures)
    if name == "no trades":
        assert figures["sharpe"] == figures["sortino"] == figures["max_drawdown"] == 0.0
        assert figures["trades"] == figures["win_rate"] == figures["profit_factor"] == 0.0
    if name == "zero variance":  # a constant positive return: no std and no downside -> 0.0 by convention
        assert figures["sharpe"] == figures["sortino"] == figures["calmar"] == 0.0
        assert figures["cagr"] == pytest.approx(1.01**252 - 1)
    if name == "all losses":
        assert figures["win_rate"] == 0.0 and figures["profit_factor"] == 0.0
        assert figures["sortino"] < 0 and figures["calmar"] < 0
        assert figures["max_drawdown_duration"] == 29
    if name in ("one bar", "empty"):
        assert figures["bars"] == 0.0 and figures["total_return"] == 0.0


def test_summary_keeps_its_headline_keys_without_activity():
    figures = metrics.summary(CURVE)
    assert {"total_return", "sharpe", "max_drawdown"} <= set(figures)
    assert "trades" not in figures


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]"), 365.0),  # daily, weekends included
        (np.array(np.busday_offset("2020-01-01", np.arange(40), roll="forward")), 252.0),  # weekdays only
        (np.arange("2020-01-01T00", "2020-01-05T00", dtype="datetime64[h]"), 24 * 365.0),  # hourly 24/7
        (np.arange("2020-01-06", "2020-06-01", 7, dtype="datetime64[D]"), 52.0),  # weekly
    ],
)
def test_annualisation_follows_the_bars(stamps, expected):
    assert metrics.infer_periods_per_year(stamps).periods_per_year == expected


def test_annualisation_of_hourly_equity_bars():
    days = np.busday_offset("2020-01-01", np.arange(10), roll="forward").astype("datetime64[h]")
    stamps = (days[:, None] + np.arange(10, 17).astype("timedelta64[h]")).ravel()  # 7 bars a weekday
    found = metrics.infer_periods_per_year(stamps)
    assert found.periods_per_year == 7 * 252
    assert "7 bars a day" in found.description
