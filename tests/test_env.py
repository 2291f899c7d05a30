"""rsc/Trading-v0 and rsc/Portfolio-v0: Gymnasium contract, execution, costs, exits, rewards, invariants."""

import copy
import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from rsc.config import ConfigError, load_settings
from rsc.config.settings import EnvSettings
from rsc.env import (
    ENV_ID,
    PORTFOLIO_ENV_ID,
    MarketArrays,
    PanelArrays,
    PortfolioEnv,
    TradingEnv,
    greedy_rollout,
)
from tests.helpers import feature_frame, panel_frame

ZERO_COSTS = {"commission_bps": 0.0, "slippage_bps": 0.0}


def make_env(mode="train", n=300, seed=0, **overrides) -> TradingEnv:
    frame, scaler = feature_frame(n, seed=seed)
    env_settings = EnvSettings(**{"window": 5, "episode_length": 50, **overrides})
    return TradingEnv(
        MarketArrays.from_frame(frame, scaler, "test", env_settings.window), env_settings, mode=mode
    )


def make_portfolio_env(mode="train", **overrides) -> PortfolioEnv:
    frame, scaler = panel_frame()
    env_settings = EnvSettings(**{"window": 4, "episode_length": 40, **overrides})
    return PortfolioEnv(
        PanelArrays.from_frame(frame, scaler, "test", env_settings.window), env_settings, mode=mode
    )


# -- Gymnasium contract ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [make_env, lambda: make_env(action="continuous", positions=(-1.0, 1.0)), make_portfolio_env],
    ids=["discrete", "continuous", "portfolio"],
)
def test_check_env_passes(factory):
    check_env(factory(), skip_render_check=True)


def test_registered_with_gymnasium():
    frame, scaler = feature_frame()
    env = gym.make(
        ENV_ID, market=MarketArrays.from_frame(frame, scaler, "test", 5), settings=EnvSettings(window=5)
    )
    assert env.observation_space.shape == (5 * 3 + 2,)
    panel, panel_scaler = panel_frame()
    multi = gym.make(
        PORTFOLIO_ENV_ID,
        market=PanelArrays.from_frame(panel, panel_scaler, "test", 4),
        settings=EnvSettings(window=4),
    )
    assert multi.observation_space.shape == (4 * 3 * 2 + 3,)
    assert multi.action_space.shape == (4,)


def rollout_rewards(env, seed: int) -> list[float]:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards, done = [], False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        done = terminated or truncated
    return rewards


@pytest.mark.parametrize("factory", [make_env, make_portfolio_env], ids=["single", "portfolio"])
def test_same_seed_same_rollout(factory):
    assert rollout_rewards(factory(), 3) == rollout_rewards(factory(), 3)
    assert rollout_rewards(factory(), 3) != rollout_rewards(factory(), 4)


@pytest.mark.parametrize("factory", [make_env, make_portfolio_env], ids=["single", "portfolio"])
def test_pickle_round_trip_keeps_state(factory):
    env = factory()
    env.reset(seed=1)
    long = env.action_space.high if env.action_space.shape else env.action_space.n - 1  # fully long
    env.step(long)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.t == env.t and clone.equity == env.equity
    expected, observed = env.step(long)[0], clone.step(long)[0]
    assert np.any(expected[-2:] != 0)  # the position slots are filled in
    np.testing.assert_array_equal(observed, expected)


def test_a_copy_shares_no_observation_or_reward_state():
    env = make_env(mode="eval", positions=(-1.0, 0.0, 1.0), reward="diff_sharpe")
    env.reset(seed=0)
    kept = env.step(2)[0]  # long: the position slots are written into the observation
    before = kept.copy()
    clone = copy.copy(env)
    assert [clone.step(0)[1] for _ in range(5)] == [env.step(0)[1] for _ in range(5)]
    np.testing.assert_array_equal(kept, before)


def test_episode_lengths_and_truncation():
    assert len(rollout_rewards(make_env(), 0)) == 50
    evaluation = make_env(mode="eval")
    assert len(rollout_rewards(evaluation, 0)) == len(evaluation.market.close) - 1 - evaluation.market.first


# -- execution ---------------------------------------------------------------------------------------


def test_fill_at_next_open_and_equity_accounting():
    env = make_env(mode="eval", **ZERO_COSTS)
    env.reset(seed=0)
    t, market = env.t, env.market
    _, reward, _, _, info = env.step(1)  # go fully long
    expected = env.settings.initial_cash * market.close[t + 1] / market.open[t + 1]
    assert info["equity"] == pytest.approx(expected)
    assert reward == pytest.approx(math.log(expected / env.settings.initial_cash))


def test_fill_at_next_close_earns_nothing_on_the_fill_bar():
    env = make_env(mode="eval", fill="next_close", **ZERO_COSTS)
    env.reset(seed=0)
    t, market = env.t, env.market
    assert env.step(1)[4]["equity"] == pytest.approx(env.settings.initial_cash)
    assert env.step(1)[4]["equity"] == pytest.approx(
        env.settings.initial_cash * market.close[t + 2] / market.close[t + 1]
    )


def test_commission_slippage_and_spread_hand_computed():
    env = make_env(mode="eval", commission_bps=7, slippage_bps=3, spread_factor=0.5)
    env.reset(seed=0)
    t, market = env.t, env.market
    cash = env.settings.initial_cash
    info = env.step(1)[4]
    half_spread = (
        0.5 * 0.5 * (market.high[t] - market.low[t]) / market.close[t]
    )  # from the bar the decision saw
    expected_cost = cash * (10e-4 + half_spread)
    assert info["cost"] == pytest.approx(expected_cost)
    assert info["equity"] == pytest.approx(cash / market.open[t + 1] * market.close[t + 1] - expected_cost)


def test_borrow_fee_for_shorts_only():
    env = make_env(
        mode="eval", positions=(-1.0, 1.0), borrow_bps_per_year=252, periods_per_year=252, **ZERO_COSTS
    )
    env.reset(seed=0)
    t, market = env.t, env.market
    short = env.step(0)[4]
    units = -env.settings.initial_cash / market.open[t + 1]
    assert short["cost"] == pytest.approx(-units * market.close[t + 1] * 1e-4)
    long_only = make_env(mode="eval", borrow_bps_per_year=252, **ZERO_COSTS)
    long_only.reset(seed=0)
    assert long_only.step(1)[4]["cost"] == 0.0


def test_the_borrow_fee_accrues_per_bar_of_the_bars_own_frequency():
    """It used to take env.periods_per_year (252 unless set), whatever the bars were."""
    import pandas as pd

    frame, scaler = feature_frame(300)
    weekdays = make_env(mode="eval")
    assert weekdays.costs.periods_per_year == 252.0
    calendar = frame.assign(timestamp=pd.date_range("2015-01-01", periods=len(frame), freq="D"))  # 24/7
    crypto = TradingEnv(MarketArrays.from_frame(calendar, scaler, "test", 5), EnvSettings(window=5))
    assert crypto.costs.periods_per_year == 365.0
    hourly = frame.assign(timestamp=pd.date_range("2015-01-05", periods=len(frame), freq="h"))
    fx = TradingEnv(MarketArrays.from_frame(hourly, scaler, "test", 5), EnvSettings(window=5))
    assert fx.costs.periods_per_year > 252 * 20
    pinned = TradingEnv(
        MarketArrays.from_frame(calendar, scaler, "test", 5), EnvSettings(window=5, periods_per_year=12)
    )
    assert pinned.costs.periods_per_year == 12.0  # a configured value still wins


def test_continuous_action_is_clipped_to_the_position_limit():
    env = make_env(
        mode="eval", action="continuous", positions=(-0.5, 0.5), max_position=0.5, max_leverage=0.5
    )
    env.reset(seed=0)
    assert env.step(np.array([1.0], dtype=np.float32))[4]["position"] == 0.5
    assert env.step(np.array([-0.4], dtype=np.float32))[4]["position"] == pytest.approx(-0.2)


def test_positions_beyond_limits_are_a_config_error():
    with pytest.raises(ConfigError, match="exceeds max_position"):
        load_settings([], ["env.positions=[0, 2]"])


# -- protective exits ----------------------------------------------------------------------------------


def long_env_with_bar(next_bar: dict, **overrides) -> TradingEnv:
    """An env whose bar t+1 (the first fill bar) has the given open/high/low/close."""
    env = make_env(mode="eval", **{**ZERO_COSTS, **overrides})
    env.reset(seed=0)
    bar = env.t + 1
    for name, value in next_bar.items():
        getattr(env, f"_{name}")[bar] = value
    return env


def test_stop_loss_exits_at_the_stop_on_the_next_bars_low():
    env = long_env_with_bar({"open": 100.0, "high": 101.0, "low": 90.0, "close": 95.0}, stop_loss=0.05)
    info = env.step(1)[4]
    assert info["units"] == 0.0
    assert info["equity"] == pytest.approx(env.settings.initial_cash * 0.95)  # out at 95.0, not the low


def test_take_profit_and_untouched_levels():
    hit = long_env_with_bar({"open": 100.0, "high": 112.0, "low": 99.0, "close": 111.0}, take_profit=0.1)
    assert hit.step(1)[4]["equity"] == pytest.approx(hit.settings.initial_cash * 1.1)
    miss = long_env_with_bar(
        {"open": 100.0, "high": 104.0, "low": 97.0, "close": 103.0}, stop_loss=0.05, take_profit=0.1
    )
    info = miss.step(1)[4]
    assert info["units"] > 0
    assert info["equity"] == pytest.approx(miss.settings.initial_cash * 1.03)


def test_stop_is_never_evaluated_on_the_bar_the_decision_saw():
    env = make_env(mode="eval", stop_loss=0.01, **ZERO_COSTS)
    env.reset(seed=0)
    t = env.t
    env._low[t] = 1e-6  # a crash on the decision bar itself must not trigger anything
    bar = t + 1
    env._open[bar], env._high[bar], env._low[bar], env._close[bar] = 100.0, 101.0, 99.5, 100.5
    assert env.step(1)[4]["units"] > 0


def test_max_drawdown_flattens_and_terminates():
    env = long_env_with_bar({"open": 100.0, "high": 100.0, "low": 70.0, "close": 70.0}, max_drawdown=0.2)
    _, _, terminated, truncated, info = env.step(1)
    assert terminated and not truncated
    assert info["units"] == 0.0
    assert info["equity"] == pytest.approx(env.settings.initial_cash * 0.7)


def test_ruin_terminates():
    env = make_env(mode="eval", positions=(0.0, 10.0), max_position=10, max_leverage=10, ruin_fraction=0.99)
    env.reset(seed=0)
    terminated = False
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(1)
        if terminated or truncated:
            break
    assert terminated


# -- observations --------------------------------------------------------------------------------------


def test_observation_only_sees_the_past_and_the_position():
    env = make_env(mode="eval", **ZERO_COSTS)
    obs, _ = env.reset(seed=0)
    t, window = env.t, env.settings.window
    np.testing.assert_allclose(obs[:-2], env.market.features[t - window + 1 : t + 1].ravel())
    assert obs[-2] == 0.0 and obs[-1] == 0.0
    obs = env.step(1)[0]
    market = env.market
    assert obs[-2] == pytest.approx(1.0)
    assert obs[-1] == pytest.approx(market.close[t + 1] / market.open[t + 1] - 1.0, rel=1e-5)


def test_portfolio_observation_layout_is_time_asset_feature():
    env = make_portfolio_env(mode="eval")
    obs, _ = env.reset(seed=0)
    t, window, market = env.t, env.settings.window, env.market
    np.testing.assert_allclose(obs[: -env.n_assets], market.features[t - window + 1 : t + 1].ravel())


# -- rewards --------------------------------------------------------------------------------------------


def equity_path(env, actions) -> tuple[list[float], list[float]]:
    env.reset(seed=0)
    equities, rewards = [env.equity], []
    for action in actions:
        _, reward, _, _, info = env.step(action)
        equities.append(info["equity"])
        rewards.append(reward)
    return equities, rewards


def test_log_return_reward_sums_to_log_growth():
    equities, rewards = equity_path(make_env(mode="eval"), [1, 1, 0, 1, 0, 0, 1])
    assert sum(rewards) == pytest.approx(math.log(equities[-1] / equities[0]))


def test_drawdown_penalty_reward_hand_computed():
    equities, rewards = equity_path(
        make_env(mode="eval", reward="drawdown_penalty", drawdown_penalty=2.0), [1] * 20
    )
    peak, drawdown = equities[0], 0.0
    for previous, current, reward in zip(equities, equities[1:], rewards, strict=False):
        peak = max(peak, current)
        new_drawdown = 1 - current / peak
        assert reward == pytest.approx(math.log(current / previous) - 2.0 * max(0.0, new_drawdown - drawdown))
        drawdown = new_drawdown


def test_diff_sharpe_reward_follows_moody_saffell():
    eta = 0.1
    equities, rewards = equity_path(make_env(mode="eval", reward="diff_sharpe", sharpe_eta=eta), [1] * 30)
    first = second = 0.0
    for previous, current, reward in zip(equities, equities[1:], rewards, strict=False):
        ret = current / previous - 1
        variance = second - first**2
        expected = (
            (second * (ret - first) - 0.5 * first * (ret**2 - second)) / variance**1.5
            if variance > 1e-12
            else 0.0
        )
        assert reward == pytest.approx(expected)
        first, second = first + eta * (ret - first), second + eta * (ret**2 - second)
    assert any(r != 0 for r in rewards)


def test_diff_sharpe_reward_takes_excess_returns_over_the_risk_free_rate():
    """The differential Sharpe ratio ignored evaluate.risk_free_rate, unlike every other Sharpe figure."""
    eta, rate = 0.1, 0.05

    def rollout(risk_free_rate):
        frame, scaler = feature_frame(300)
        settings = EnvSettings(window=5, episode_length=50, reward="diff_sharpe", sharpe_eta=eta)
        env = TradingEnv(
            MarketArrays.from_frame(frame, scaler, "test", 5),
            settings,
            mode="eval",
            risk_free_rate=risk_free_rate,
        )
        return equity_path(env, [1] * 30)

    equities, rewards = rollout(rate)
    assert rewards != rollout(0.0)[1]
    per_bar, first, second = rate / 252, 0.0, 0.0
    for previous, current, reward in zip(equities, equities[1:], rewards, strict=False):
        ret = current / previous - 1 - per_bar
        variance = second - first**2
        expected = (
            (second * (ret - first) - 0.5 * first * (ret**2 - second)) / variance**1.5
            if variance > 1e-12
            else 0.0
        )
        assert reward == pytest.approx(expected)
        first, second = first + eta * (ret - first), second + eta * (ret**2 - second)


def test_unknown_reward_is_named():
    with pytest.raises(ValueError, match="unknown reward 'sortino'"):
        make_env(reward="sortino")


# -- accounting invariants ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 1000),
    actions=st.lists(st.integers(0, 2), min_size=5, max_size=60),
    commission=st.floats(0, 20),
    spread=st.floats(0, 1),
    borrow=st.floats(0, 500),
)
def test_equity_is_cash_plus_position_and_costs_are_never_negative(seed, actions, commission, spread, borrow):
    env = make_env(
        mode="eval",
        seed=seed,
        positions=(-1.0, 0.0, 1.0),
        commission_bps=commission,
        spread_factor=spread,
        borrow_bps_per_year=borrow,
    )
    env.reset(seed=seed)
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        assert info["cost"] >= 0
        assert info["equity"] == pytest.approx(
            env.portfolio.cash + env.portfolio.units * env.market.close[env.t]
        )
        if terminated or truncated:
            break


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000))
def test_always_long_without_costs_is_buy_and_hold(seed):
    env = make_env(mode="eval", seed=seed, **ZERO_COSTS)
    run = greedy_rollout(env, lambda obs: 1)
    market, first = env.market, env.market.first
    hold = env.settings.initial_cash / market.open[first + 1] * market.close[first + 1 :]
    np.testing.assert_allclose(run.equity[1:], hold, rtol=1e-12)


def test_portfolio_env_accounting_and_limits():
    env = make_portfolio_env(mode="eval", positions=(0.0, 0.4), max_position=0.4, max_leverage=0.6)
    env.reset(seed=0)
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([1.0, 1.0, 0.0, 0.0], dtype=np.float32))
        weights = info["weights"]
        assert (weights <= 0.4 + 1e-12).all() and weights.sum() <= 0.6 + 1e-12
        assert info["cost"] >= 0
        assert info["equity"] == pytest.approx(env._cash + float(np.dot(env._units, env.market.close[env.t])))


def test_portfolio_all_cash_never_moves():
    env = make_portfolio_env(mode="eval")
    env.reset(seed=0)
    for _ in range(5):
        info = env.step(np.array([0, 0, 0, 1.0], dtype=np.float32))[4]
    assert info["equity"] == env.settings.initial_cash


def test_greedy_rollout_requires_eval_mode():
    with pytest.raises(ValueError, match="eval"):
        greedy_rollout(make_env(), lambda obs: 0)
    run = greedy_rollout(make_env(mode="eval", **ZERO_COSTS), lambda obs: 0)
    np.testing.assert_allclose(run.equity, run.equity[0])  # flat all along
