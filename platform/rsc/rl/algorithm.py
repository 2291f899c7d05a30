"""The one function that turns an AlgorithmSpec into RLlib's ``AlgorithmConfig`` (new API stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from rsc.env import PORTFOLIO_ENV_ID
from rsc.rl.callbacks import ValidationCallback
from rsc.rl.catalog import ALGORITHMS
from rsc.rl.envs import env_id, register_envs
from rsc.rl.spec import AlgorithmSpec


def build_algorithm_config(
    spec: AlgorithmSpec,
    env_config: Mapping[str, Any],
    seed: int,
    training: Mapping[str, Any] | None = None,
) -> AlgorithmConfig:
    """RLlib config for ``spec`` on the env described by ``env_config`` (see :func:`rsc.rl.envs.env_config`).

    Args:
        training: overrides of ``spec.training`` (a Tune trial's sample, the tuned best).
    """
    register_envs()
    resources = spec.resources
    env = env_id(dict(env_config), spec.env)
    # The portfolio env takes scores in [0, 1] as they come (it clips them): RLlib must not rescale its
    # actions from [-1, 1], or the greedy actions that evaluation and serving send would differ.
    rescale = env != PORTFOLIO_ENV_ID
    return (
        ALGORITHMS[spec.algorithm]()
        .environment(env, env_config=dict(env_config), normalize_actions=rescale)
        .env_runners(
            num_env_runners=resources.num_env_runners,
            num_envs_per_env_runner=resources.num_envs_per_env_runner,
            num_cpus_per_env_runner=resources.num_cpus_per_env_runner,
        )
        .learners(num_learners=resources.num_learners, num_gpus_per_learner=resources.num_gpus_per_learner)
        .rl_module(model_config=DefaultModelConfig(**spec.model))
        .training(**{**spec.training, **(training or {})})
        .reporting(**spec.reporting)
        .callbacks(ValidationCallback)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=seed, log_level="WARN")
    )
