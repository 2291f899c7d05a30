"""RLlib sampling throughput: the rsc env against an env with the same spaces that does nothing.

Both run inside RLlib's own SingleAgentEnvRunner (connectors, RLModule forward pass, episode
bookkeeping) with the same settings, in one process; the ratio says how much of RLlib's sampling time
the trading env itself costs (target: 0.9x or better, so the env is never the bottleneck).

    python benchmarks/rllib_sampling.py [--steps 20000] [--envs 4] [--rounds 3]
"""

from __future__ import annotations

import rsc  # noqa: F401  (sets Ray's token auth mode, which must precede importing ray)

# isort: split

import argparse
import time

import gymnasium as gym
import numpy as np
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.tune.registry import register_env

from benchmarks.env_throughput import WINDOW, sp500_features
from rsc.config.settings import EnvSettings
from rsc.env import MarketArrays, TradingEnv

SETTINGS = EnvSettings(window=WINDOW, positions=(-1.0, 0.0, 1.0), commission_bps=5, slippage_bps=2)


class NullEnv(gym.Env):
    """Same observation and action spaces as the rsc env; every step returns a fresh zero observation."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, episode_length: int):
        self.observation_space, self.action_space = observation_space, action_space
        self._zeros = np.zeros(observation_space.shape, dtype=np.float32)
        self._length, self._t = episode_length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._zeros.copy(), {}

    def step(self, action):
        self._t += 1
        return self._zeros.copy(), 0.0, False, self._t >= self._length, {}


def make_rsc_env(config: dict) -> TradingEnv:
    frame, scaler = sp500_features()
    return TradingEnv(MarketArrays.from_frame(frame, scaler, None, WINDOW), SETTINGS)


def make_null_env(config: dict) -> NullEnv:
    probe = make_rsc_env(config)
    return NullEnv(probe.observation_space, probe.action_space, SETTINGS.episode_length)


def steps_per_second(env_name: str, steps: int, envs: int) -> float:
    config = (
        PPOConfig()
        .environment(env_name)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
        .debugging(seed=0)
    )
    runner = SingleAgentEnvRunner(config=config)
    runner.sample(num_timesteps=1000, random_actions=False)  # warm-up: module, connectors, caches
    started = time.perf_counter()
    runner.sample(num_timesteps=steps, random_actions=False)
    elapsed = time.perf_counter() - started
    runner.stop()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", type=int, default=4, help="vectorised envs per runner")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    register_env("rsc-bench", make_rsc_env)
    register_env("null-bench", make_null_env)
    best = {"rsc/Trading-v0": 0.0, "null env (same spaces)": 0.0}
    for _ in range(args.rounds):  # alternate, keep each env's best round
        best["null env (same spaces)"] = max(
            best["null env (same spaces)"], steps_per_second("null-bench", args.steps, args.envs)
        )
        best["rsc/Trading-v0"] = max(
            best["rsc/Trading-v0"], steps_per_second("rsc-bench", args.steps, args.envs)
        )
    baseline = best["null env (same spaces)"]
    print(
        f"RLlib SingleAgentEnvRunner, PPO default module, {args.envs} envs, {args.steps} steps, "
        f"best of {args.rounds}"
    )
    print(f"{'env':28s} {'env steps/s':>12s} {'vs null env':>12s}")
    for name, rate in best.items():
        print(f"{name:28s} {rate:12,.0f} {rate / baseline:11.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
