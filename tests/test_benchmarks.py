"""Benchmark rules by hand, their causality, and that they all run through the one backtester."""

import numpy as np
import pytest

from rsc.config.settings import EvaluateSettings
from rsc.core.execution import Costs, simulate
from rsc.evaluate import benchmarks, multi_asset
from rsc.evaluate.backtest import backtest, backtest_metrics
from rsc.evaluate.suite import BUY_AND_HOLD, POLICY, PriceHistory, TrialsEvidence, evaluate


def _history(n: int = 400, seed: int = 0) -> PriceHistory:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    stamps = np.busday_offset("2015-01-01", np.arange(n), roll="forward").astype("datetime64[ns]")
    return PriceHistory(stamps, close * np.exp(rng.normal(0, 0.002, n)), close)


def test_buy_and_hold_and_flat():
    history = _history(50)
    held = backtest(benchmarks.buy_and_hold(50), history.open, history.close, Costs(), 1_000.0)
    np.testing.assert_allclose(held.equity[1:], 1_000 * history.close[1:] / history.open[1])
    idle = backtest(benchmarks.flat(50), history.open, history.close, Costs(5, 2), 1_000.0)
    np.testing.assert_array_equal(idle.equity, 1_000.0)
    assert idle.trades.pnl.size == 0 and idle.costs.sum() == 0


def test_sma_crossover_hand_computed():
    close = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0, 2.0])
    # SMA(3) from bar 2: 2, 3, 3.33, 3, 2, 1.67; SMA(1) is the close: 3, 4, 3, 2, 1, 2.
    expected = [0, 0, 1, 1, 0, 0, 0, 1]
    np.testing.assert_array_equal(benchmarks.sma_crossover(close, 1, 3), expected)
    np.testing.assert_array_equal(
        benchmarks.sma_crossover(close, 1, 3, 1.0, -1.0), [0, 0, 1, 1, -1, -1, -1, 1]
    )
    with pytest.raises(ValueError, match="fast < slow"):
        benchmarks.sma_crossover(close, 3, 3)


def test_time_series_momentum_hand_computed():
    close = np.array([10.0, 11.0, 12.0, 11.0, 10.0, 12.0])
    # Two-bar returns from bar 2: 12/10, 11/11, 10/12, 12/11 -> up, flat (not up), down, up.
    np.testing.assert_array_equal(benchmarks.time_series_momentum(close, 2), [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(benchmarks.time_series_momentum(close, 2, 1.0, -1.0), [0, 0, 1, -1, -1, 1])


@pytest.mark.parametrize(
    "rule",
    [lambda c: benchmarks.sma_crossover(c, 5, 20), lambda c: benchmarks.time_series_momentum(c, 10)],
)
def test_rules_never_look_ahead(rule):
    close = _history(120).close
    changed = close.copy()
    changed[80:] *= np.random.default_rng(9).uniform(0.5, 1.5, 40)
    np.testing.assert_array_equal(rule(close)[:80], rule(changed)[:80])


def test_random_positions_are_seeded_and_drawn_from_the_env_positions():
    a = benchmarks.random_positions(500, (-1.0, 0.0, 1.0), seed=3)
    np.testing.assert_array_equal(a, benchmarks.random_positions(500, (-1.0, 0.0, 1.0), seed=3))
    assert set(np.unique(a)) == {-1.0, 0.0, 1.0}
    assert not np.array_equal(a, benchmarks.random_positions(500, (-1.0, 0.0, 1.0), seed=4))


def test_random_runs_are_backtests_of_random_positions():
    history = _history(60)
    runs = benchmarks.random_runs(
        (0.0, 1.0),
        np.array([5, 6]),
        history.open,
        history.close,
        Costs(5, 2),
        1_000.0,
        lambda r: {"final": float(r.equity[-1])},
    )
    expected = simulate(
        benchmarks.random_positions(60, (0.0, 1.0), 6), history.open, history.close, Costs(5, 2), 1_000.0
    )
    np.testing.assert_array_equal(runs.equity[1], expected.equity)
    assert runs.metrics[1] == {"final": expected.equity[-1]}


def test_distribution_of_random_figures():
    found = benchmarks.distribution(np.arange(101.0), observed=30.0)
    assert found == pytest.approx(
        {"mean": 50.0, "p05": 5.0, "p50": 50.0, "p95": 95.0, "share_below_policy": 30 / 101}
    )


def test_equal_weight_decisions():
    weights = multi_asset.equal_weight(6, 4, every=3)
    np.testing.assert_array_equal(weights[[0, 3]], 0.25)
    assert np.isnan(weights[[1, 2, 4, 5]]).all()


def test_minimum_variance_of_uncorrelated_assets():
    # Centred, orthogonal series: sample covariance diag(0.0004, 0.0016) * 4/3, so w = (0.8, 0.2).
    returns = np.array([[0.01, 0.02], [-0.01, 0.02], [0.01, -0.02], [-0.01, -0.02]])
    np.testing.assert_allclose(multi_asset.minimum_variance_weights(returns), [0.8, 0.2], atol=1e-6)


def test_minimum_variance_is_long_only():
    # The second asset is the first one doubled plus a little noise: unconstrained, it would be shorted.
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.01, 200)
    returns = np.column_stack([base, 2 * base + rng.normal(0, 0.001, 200)])
    np.testing.assert_allclose(multi_asset.minimum_variance_weights(returns), [1.0, 0.0], atol=1e-6)


def test_minimum_variance_decisions_use_only_past_closes():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, [0.01, 0.03], (300, 2)), axis=0))
    weights = multi_asset.minimum_variance(close, 100, window=60, every=20)
    changed = close.copy()
    changed[-50:] *= 1.5
    np.testing.assert_array_equal(weights[:50], multi_asset.minimum_variance(changed, 100, 60, 20)[:50])
    assert weights[0, 0] > weights[0, 1]  # the calmer asset gets more


def test_every_benchmark_runs_through_the_same_backtester():
    history = _history()
    n = 150
    policy = backtest(
        benchmarks.sma_crossover(history.close, 5, 20)[-n:],
        history.open[-n:],
        history.close[-n:],
        Costs(5, 2),
        100_000.0,
        history.timestamps[-n:],
    )
    settings = EvaluateSettings(random_seeds=20, sma_fast=10, sma_slow=40, momentum_lookback=60)
    found = evaluate(
        policy, history, "SYN", (0.0, 1.0), Costs(5, 2), 100_000.0, settings, 7, TrialsEvidence()
    )
    for name in (BUY_AND_HOLD, "flat", "sma_crossover", "momentum"):
        result = found.backtests[name]
        replay = simulate(result.decisions, history.open[-n:], history.close[-n:], Costs(5, 2), 100_000.0)
        np.testing.assert_array_equal(result.equity, replay.equity)
        assert found.metrics[name]["sharpe"] == backtest_metrics(result, 252.0, 0.0)["sharpe"]
    np.testing.assert_array_equal(
        found.backtests["sma_crossover"].decisions, benchmarks.sma_crossover(history.close, 10, 40)[-n:]
    )
    assert found.metrics[BUY_AND_HOLD]["beta"] == pytest.approx(1.0)
    assert found.metrics[BUY_AND_HOLD]["alpha"] == pytest.approx(0.0, abs=1e-12)
    assert found.metrics[POLICY]["beta"] != 0.0
    assert found.random.equity.shape == (20, n)
    assert found.random_distribution["seeds"] == 20


def test_multi_asset_benchmarks_pay_the_spread_and_the_borrow_fee():
    """They used to charge commission and slippage only."""
    from rsc.core.execution import Costs
    from rsc.evaluate.multi_asset import simulate_multi_asset

    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (60, 2)), axis=0))
    high, low = close * 1.01, close * 0.99
    weights = np.tile([0.5, -0.5], (60, 1))
    plain = simulate_multi_asset(weights, close, close, Costs(5, 2), 1e5, high, low)
    spread = simulate_multi_asset(weights, close, close, Costs(5, 2, spread_factor=0.5), 1e5, high, low)
    borrow = simulate_multi_asset(weights, close, close, Costs(5, 2, borrow_bps_per_year=500), 1e5, high, low)
    first = 1  # the first fill: 0.5 + 0.5 of equity traded, at 7 bps, plus half of the 2% range
    assert spread.costs[first] == pytest.approx(plain.costs[first] + 1e5 * 1.0 * 0.5 * 0.5 * 0.02, rel=1e-6)
    assert borrow.costs.sum() > plain.costs.sum()  # the short leg pays a fee every bar
    fee = borrow.costs[first] - plain.costs[first]  # the same trades; the fee on the short at the close
    assert fee == pytest.approx(abs(borrow.units[first, 1]) * close[first, 1] * 500e-4 / 252, rel=1e-9)
    with pytest.raises(ValueError, match="high and low"):
        simulate_multi_asset(weights, close, close, Costs(5, 2, spread_factor=0.5), 1e5)
