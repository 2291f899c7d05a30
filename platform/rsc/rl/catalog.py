"""The algorithms a YAML may name, by their short name (an explicit registry, no reflection)."""

from __future__ import annotations

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.sac import SACConfig

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {
    "PPO": PPOConfig,
    "DQN": DQNConfig,
    "APPO": APPOConfig,
    "SAC": SACConfig,
}
