"""Gymnasium contract of rsc/Trading-v0: check_env, determinism, pickling, accounting."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rsc.config.settings import EnvSettings
from rsc.env import ENV_ID, MarketArrays, TradingEnv, greedy_rollout
from tests.helpers import feature_frame


def make_env(mode="train", **overrides) -> TradingEnv:
    frame, scaler = feature_frame()
    settings = EnvSettings(window=5, episode_length=50, **overrides)
    return TradingEnv(MarketArrays.from_frame(frame, scaler, "test", settings.window), settings, mode=mode)


def test_check_env_passes():
    check_env(make_env(), skip_render_check=True)


def test_registered_with_gymnasium():
    frame, scaler = feature_frame()
    env = gym.make(
        ENV_ID, market=MarketArrays.from_frame(frame, scaler, "test", 5), settings=EnvSettings(window=5)
    )
    assert env.observation_space.shape == (5 * 3 + 1,)


def rollout_rewards(env: TradingEnv, seed: int) -> list[float]:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards, done = [], False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        done = terminated or truncated
    return rewards


def test_same_seed_same_rollout():
    assert rollout_rewards(make_env(), 3) == rollout_rewards(make_env(), 3)
    assert rollout_rewards(make_env(), 3) != rollout_rewards(make_env(), 4)


def test_pickle_round_trip_keeps_state():
    env = make_env()
    env.reset(seed=1)
    env.step(1)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.t == env.t and clone.equity == env.equity
    np.testing.assert_array_equal(clone.step(0)[0], env.step(0)[0])


def test_episode_lengths_and_truncation():
    env = make_env()
    assert len(rollout_rewards(env, 0)) == 50
    evaluation = make_env(mode="eval")
    steps = len(rollout_rewards(evaluation, 0))
    assert steps == len(evaluation.market.close) - 1 - evaluation.market.first


def test_fill_at_next_open_and_equity_accounting():
    env = make_env(mode="eval", commission_bps=0, slippage_bps=0)
    env.reset(seed=0)
    t = env.t
    _, reward, _, _, info = env.step(1)  # go fully long
    market = env.market
    expected = env.settings.initial_cash * market.close[t + 1] / market.open[t + 1]
    assert info["equity"] == pytest.approx(expected)
    assert reward == pytest.approx(np.log(expected / env.settings.initial_cash))


def test_observation_only_sees_the_past():
    env = make_env(mode="eval")
    obs, _ = env.reset(seed=0)
    t, window = env.t, env.settings.window
    np.testing.assert_allclose(obs[:-1], env.market.features[t - window + 1 : t + 1].ravel())
    assert obs[-1] == 0.0


def test_ruin_terminates():
    env = make_env(mode="eval", positions=(0.0, 10.0), ruin_fraction=0.99)
    env.reset(seed=0)
    terminated = False
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(1)
        if terminated or truncated:
            break
    assert terminated


def test_greedy_rollout_requires_eval_mode():
    with pytest.raises(ValueError, match="eval"):
        greedy_rollout(make_env(), lambda obs: 0)
    run = greedy_rollout(make_env(mode="eval", commission_bps=0, slippage_bps=0), lambda obs: 0)
    np.testing.assert_allclose(run.equity, run.equity[0])  # flat all along
