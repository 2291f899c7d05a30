"""The backtester: the env's execution code, trades read off it, and parity with a step-by-step rollout."""

import numpy as np
import pytest

from rsc.config.settings import EnvSettings
from rsc.core.execution import Costs, simulate
from rsc.core.trades import round_trips
from rsc.env import MarketArrays, TradingEnv, greedy_rollout
from rsc.evaluate.backtest import backtest, backtest_policy, decisions_from_positions
from rsc.evaluate.multi_asset import simulate_multi_asset
from tests.helpers import feature_frame

POSITIONS = (-1.0, 0.0, 0.5, 1.0)


def _env(ruin_fraction: float = 0.5) -> TradingEnv:
    frame, scaler = feature_frame(n=300)
    market = MarketArrays.from_frame(frame, scaler, "test", window=10)
    settings = EnvSettings(window=10, positions=POSITIONS, ruin_fraction=ruin_fraction)
    return TradingEnv(market, settings, mode="eval")


def _prices(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return close * np.exp(rng.normal(0, 0.003, n)), close


def test_backtest_is_the_env_execution_code():
    open_, close = _prices()
    decisions = np.random.default_rng(1).choice(POSITIONS, len(close))
    result = backtest(decisions, open_, close, Costs(5, 2), 10_000.0)
    run = simulate(decisions, open_, close, Costs(5, 2), 10_000.0)
    np.testing.assert_array_equal(result.equity, run.equity)
    np.testing.assert_array_equal(result.costs, run.costs)
    np.testing.assert_allclose(result.weights, run.units * close / run.equity)
    np.testing.assert_allclose(result.traded_notional * Costs(5, 2).rate, run.costs, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_backtest_matches_the_step_by_step_env(seed):
    rng = np.random.default_rng(seed)
    env = _env()
    result = backtest_policy(env, lambda obs: int(rng.integers(len(POSITIONS))))
    rng = np.random.default_rng(seed)  # the same actions again, stepped through the env by hand
    rollout = greedy_rollout(env, lambda obs: int(rng.integers(len(POSITIONS))))
    np.testing.assert_allclose(result.equity, rollout.equity, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.costs, rollout.costs, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(result.decisions[:-1], rollout.positions[1:])
    assert result.trades.pnl.size > 5


def test_fixed_decision_series_matches_env_steps():
    env = _env()
    actions = np.random.default_rng(3).integers(len(POSITIONS), size=len(env.market.close))
    env.reset(seed=0)
    start, equity, done, k = env.t, [env.equity], False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(actions[k])
        equity.append(info["equity"])
        done, k = terminated or truncated, k + 1
    window = slice(start, start + len(equity))
    decisions = np.asarray(POSITIONS)[actions[: len(equity)]]
    result = backtest(
        decisions, env.market.open[window], env.market.close[window], Costs(5, 2), env.settings.initial_cash
    )
    np.testing.assert_allclose(result.equity, equity, rtol=1e-9, atol=0)


def test_policy_backtest_follows_an_env_that_terminates_early():
    env = _env(ruin_fraction=0.999)  # the first costs already breach it
    result = backtest_policy(env, lambda obs: 3)
    assert len(result.equity) < len(env.market.close) - env.market.first
    assert result.equity[-1] <= 0.999 * env.settings.initial_cash


def test_decisions_from_positions():
    np.testing.assert_array_equal(decisions_from_positions(np.array([0.0, 1.0, 0.5])), [1.0, 0.5, 0.5])
    np.testing.assert_array_equal(decisions_from_positions(np.array([0.0])), [0.0])


def test_bad_decisions_are_one_clear_error():
    open_, close = _prices(10)
    with pytest.raises(ValueError, match="same non-zero length"):
        backtest(np.ones(9), open_, close, Costs(), 1.0)
    with pytest.raises(ValueError, match="bar 4"):
        backtest(np.where(np.arange(10) == 4, np.nan, 1.0), open_, close, Costs(), 1.0)


# -- round trips ----------------------------------------------------------------------------------
def test_round_trips_hand_computed():
    # Long 10 units at 100 (bar 1), out at 120 (bar 3): +200. Short 1,200 of equity at 120 (bar 4) = -10
    # units; at bar 5 equity is 1,400 at 100, so the short grows to -14 units; still open, marked at 100.
    prices = np.array([100.0, 100.0, 110.0, 120.0, 120.0, 100.0])
    result = backtest(np.array([1.0, 1.0, 0.0, -1.0, -1.0, -1.0]), prices, prices, Costs(), 1_000.0)
    np.testing.assert_allclose(result.units, [0, 10, 10, 0, -10, -14])
    trades = result.trades
    np.testing.assert_array_equal(trades.entry, [1, 4])
    np.testing.assert_array_equal(trades.exit, [3, 5])
    np.testing.assert_array_equal(trades.side, [1, -1])
    np.testing.assert_array_equal(trades.closed, [True, False])
    np.testing.assert_allclose(trades.pnl, [200.0, 200.0])
    np.testing.assert_allclose(trades.ret, [200 / 1_000, 200 / 1_200])
    np.testing.assert_allclose(trades.exit_price, [120.0, 100.0])


def test_a_flip_splits_its_cost_between_the_two_trades():
    # 10 bps. Bar 1: buy 10 units at 100 (cost 1.0). Bar 2: flip short at 110; the fill sells the 10
    # units held and as many again, and the closing part pays its share of that bar's cost.
    prices = np.array([100.0, 100.0, 110.0, 110.0])
    result = backtest(np.array([1.0, -1.0, -1.0, -1.0]), prices, prices, Costs(commission_bps=10), 1_000.0)
    units, costs = result.units, result.costs
    assert units[1] > 0 > units[2]
    closing_share = costs[2] * units[1] / (units[1] - units[2])
    first = -units[1] * 100 - costs[1] + units[1] * 110 - closing_share
    np.testing.assert_allclose(result.trades.pnl[0], first)
    np.testing.assert_allclose(result.trades.pnl.sum(), result.equity[-1] - result.equity[0])


@pytest.mark.parametrize("seed", range(5))
def test_trades_add_up_to_the_equity_change(seed):
    open_, close = _prices(200, seed)
    rng = np.random.default_rng(seed)
    decisions = np.repeat(rng.choice(POSITIONS, 40), 5)  # held a few bars each, flips included
    result = backtest(decisions, open_, close, Costs(5, 2), 50_000.0)
    trades = result.trades
    np.testing.assert_allclose(trades.pnl.sum(), result.equity[-1] - result.equity[0], rtol=1e-9)
    assert (np.diff(trades.entry) > 0).all() and (trades.exit >= trades.entry).all()
    assert trades.closed[:-1].all()  # only the last trade can still be open


def test_no_position_no_trades():
    open_, close = _prices(20)
    trades = round_trips(np.zeros(20), open_, close, np.zeros(20), np.full(20, 1.0))
    assert trades.pnl.size == 0 and trades.entry.dtype.kind == "i"


# -- multi-asset loop -----------------------------------------------------------------------------
def test_multi_asset_with_one_asset_is_simulate():
    open_, close = _prices()
    decisions = np.random.default_rng(2).choice(POSITIONS, len(close))
    run = simulate(decisions, open_, close, Costs(5, 2), 10_000.0)
    multi = simulate_multi_asset(decisions[:, None], open_[:, None], close[:, None], Costs(5, 2), 10_000.0)
    np.testing.assert_allclose(multi.equity, run.equity, rtol=1e-12)
    np.testing.assert_allclose(multi.costs, run.costs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(multi.units[:, 0], run.units, rtol=1e-12)


def test_multi_asset_hand_computed_and_holding_rows():
    # 1,000 split 50/50 at opens (10, 20): 50 and 25 units; 10 bps on 1,000 traded = 1.0.
    open_ = np.array([[10.0, 20.0], [10.0, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 18.0]])
    weights = np.array([[0.5, 0.5], [np.nan, np.nan], [0.5, 0.5]])
    run = simulate_multi_asset(weights, open_, close, Costs(commission_bps=10), 1_000.0)
    np.testing.assert_allclose(run.units[1], [50.0, 25.0])
    assert run.costs[1] == pytest.approx(1.0)
    assert run.cash[1] == pytest.approx(-1.0)
    assert run.equity[1] == pytest.approx(-1 + 50 * 11 + 25 * 20)
    np.testing.assert_allclose(run.units[2], run.units[1])  # NaN row: no order, no cost
    assert run.costs[2] == 0.0
    assert run.equity[2] == pytest.approx(-1 + 50 * 12 + 25 * 18)


def test_multi_asset_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[T, N\]"):
        simulate_multi_asset(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 3)), Costs(), 1.0)


def test_backtest_matches_the_env_with_spread_borrow_and_next_close_fills():
    """Every cost the env charges (spread from the bar range, borrow on shorts) is in the replay too."""
    frame, scaler = feature_frame(200, seed=5)
    rng = np.random.default_rng(5)
    for fill in ("next_open", "next_close"):
        settings = EnvSettings(
            window=5,
            positions=(-1.0, 0.0, 1.0),
            spread_factor=0.3,
            borrow_bps_per_year=300,
            commission_bps=4,
            fill=fill,
        )
        env = TradingEnv(MarketArrays.from_frame(frame, scaler, "test", 5), settings, mode="eval")
        result = backtest_policy(env, lambda obs: int(rng.integers(3)))
        assert result.costs.sum() > 0


@pytest.mark.parametrize("fill", ["next_open", "next_close"])
@pytest.mark.parametrize(
    "exits",
    [
        {"stop_loss": 0.01},
        {"take_profit": 0.015},
        {"stop_loss": 0.01, "take_profit": 0.02},
        {"max_drawdown": 0.03},
        {"stop_loss": 0.02, "take_profit": 0.03, "max_drawdown": 0.05},
    ],
    ids=["stop", "take", "stop+take", "drawdown", "all"],
)
def test_backtest_replays_every_exit_the_env_applies(fill, exits):
    """Stops, take-profits and the kill switch fill at the same prices in the env and in the report."""
    frame, scaler = feature_frame(300, seed=11)
    settings = EnvSettings(window=5, positions=(-1.0, 0.0, 1.0), spread_factor=0.2, fill=fill, **exits)
    env = TradingEnv(MarketArrays.from_frame(frame, scaler, "test", 5), settings, mode="eval")
    rng = np.random.default_rng(7)
    result = backtest_policy(env, lambda obs: int(rng.integers(3)))  # raises if the equity differs
    rng = np.random.default_rng(7)
    rollout = greedy_rollout(env, lambda obs: int(rng.integers(3)))
    np.testing.assert_allclose(result.equity, rollout.equity, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.costs, rollout.costs, rtol=1e-9, atol=1e-12)
    # The exits acted: the kill switch ended the episode early, or the replay differs from one without them.
    start = int(np.searchsorted(env.market.timestamps, rollout.timestamps[0]))
    window = slice(start, start + len(rollout.equity))
    prices = env.market.open if fill == "next_open" else env.market.close
    plain = backtest(
        result.decisions, prices[window], env.market.close[window], env.costs, settings.initial_cash,
        high=env.market.high[window], low=env.market.low[window],
    )  # fmt: skip
    ended_early = len(result.equity) < len(env.market.close) - env.market.first
    assert ended_early or not np.allclose(plain.equity, result.equity)
    assert ended_early == ("max_drawdown" in exits)
