"""A short RLlib PPO run on rsc/Trading-v0 learns to beat random on a synthetic trending series."""

import numpy as np
import pytest

from rsc.config.settings import EnvSettings
from rsc.core.metrics import total_return
from rsc.core.schema import PART
from rsc.env import MarketArrays, TradingEnv, greedy_rollout
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.policy import greedy_actor
from rsc.rl.spec import load_algorithm_spec
from rsc.storage import Storage
from tests.conftest import PROJECT
from tests.helpers import synthetic_bars

pytestmark = pytest.mark.slow


def trending_dataset(tmp_path) -> tuple[str, str, dict]:
    """A steady uptrend with small noise: always long is right, flipping costs money."""
    frame = synthetic_bars(600, drift=0.003, volatility=0.004, seed=1)
    frame["momentum"] = np.log(frame["close"]).diff(5).fillna(0.0)
    frame[PART] = np.where(np.arange(len(frame)) < 450, "train", "validation")
    scaler = {"columns": ["momentum"], "mean": [0.0], "std": [0.01]}
    storage = Storage()
    dataset_uri, scaler_uri = f"file://{tmp_path}/trend", f"file://{tmp_path}/scaler.json"
    storage.write_dataset(dataset_uri, frame)
    storage.write_json(scaler_uri, scaler)
    return dataset_uri, scaler_uri, scaler


def test_ppo_beats_random_on_a_trend(ray_session, tmp_path):
    dataset_uri, scaler_uri, scaler = trending_dataset(tmp_path)
    settings = EnvSettings(window=5, positions=(-1.0, 0.0, 1.0), episode_length=100)
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / "ppo_smoke.yaml")
    config = build_algorithm_config(
        spec,
        env_config(dataset_uri, scaler_uri, "train", settings),
        seed=3,
        training={"train_batch_size_per_learner": 500, "num_epochs": 4, "lr": 1e-3},
    )
    algo = config.build_algo()
    try:
        for _ in range(10):
            algo.train()
        frame = Storage().read_dataset(dataset_uri)
        market = MarketArrays.from_frame(frame, scaler, "validation", settings.window)
        learned = total_return(
            greedy_rollout(TradingEnv(market, settings, "eval"), greedy_actor(algo.get_module())).equity
        )
    finally:
        algo.stop()
    rng = np.random.default_rng(0)
    random_returns = [
        total_return(
            greedy_rollout(TradingEnv(market, settings, "eval"), lambda obs: int(rng.integers(3))).equity
        )
        for _ in range(20)
    ]
    assert learned > np.mean(random_returns) + 2 * np.std(random_returns)
