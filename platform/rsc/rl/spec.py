"""The typed form of ``rllib_configs/*.yaml``: one algorithm, its resources and its search space."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from rsc.config.loader import ConfigError, load_model
from rsc.config.settings import EnvSettings, Section

ALGORITHM_NAMES = ("PPO", "DQN", "APPO", "SAC")
# RLlib model options whose policy the contract (rsc.core.policy_spec) could not serve the way it was
# trained: refused when the YAML is read, not found out by the endpoint.
UNCARRIED_MODEL_OPTIONS = {
    "lstm_use_prev_action": "the policy contract gives a policy its observation and recurrent state only, "
    "not the previous action: drop it (the position slots carry the position)",
    "lstm_use_prev_reward": "the policy contract gives a policy its observation and recurrent state only, "
    "not the previous reward: drop it",
    "conv_filters": "observations are flat feature windows, not images: use fcnet_hiddens",
}


class ResourceSpec(Section):
    num_env_runners: int = Field(1, ge=0, description="Remote env runners (0 = sample in the driver).")
    num_envs_per_env_runner: int = Field(1, ge=1, description="Vectorised envs per runner.")
    num_cpus_per_env_runner: int = Field(1, ge=1, description="CPUs per env runner.")
    num_learners: int = Field(0, ge=0, description="Remote learners (0 = learn in the driver).")
    num_gpus_per_learner: float = Field(0, ge=0, description="GPUs per learner (GPU learner workers).")


class StopSpec(Section):
    training_iteration: int = Field(10, ge=1, description="Training iterations.")


class SearchDimension(Section):
    """One dimension of the search space, in Tune's vocabulary."""

    type: Literal["loguniform", "uniform", "quniform", "randint", "choice"]
    lower: float | None = None
    upper: float | None = None
    q: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchDimension:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice dimension needs a non-empty 'values' list")
        elif self.lower is None or self.upper is None or self.lower >= self.upper:
            raise ValueError(f"a {self.type} dimension needs lower < upper")
        return self


class TuneSpec(Section):
    num_samples: int = Field(4, ge=1, description="Trials to run.")
    metric: str = Field("eval/sharpe", description="Metric the search optimises.")
    mode: Literal["max", "min"] = Field("max", description="Maximise or minimise the metric.")
    scheduler: Literal["asha", "pbt", "fifo"] = Field("asha", description="Trial scheduler.")
    grace_period: int = Field(2, ge=1, description="ASHA: iterations before a trial can be stopped.")
    reduction_factor: int = Field(2, ge=2, description="ASHA: halving rate.")
    max_concurrent_trials: int = Field(2, ge=1, description="Trials running at once.")
    iterations: int | None = Field(None, ge=1, description="Iterations per trial (default: stop's).")


class AlgorithmSpec(Section):
    algorithm: Literal["PPO", "DQN", "APPO", "SAC"] = Field(description="RLlib algorithm.")
    env: str = Field("rsc/Trading-v0", description="Registered env id.")
    env_config: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the run's `env` settings this algorithm needs."
    )
    model: dict[str, Any] = Field(default_factory=dict, description="RLlib DefaultModelConfig fields.")
    resources: ResourceSpec = ResourceSpec()
    training: dict[str, Any] = Field(default_factory=dict, description="Arguments of config.training().")
    reporting: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments of config.reporting() (e.g. min_sample_timesteps_per_iteration).",
    )
    stop: StopSpec = StopSpec()
    search_space: dict[str, SearchDimension] = Field(default_factory=dict, description="Tune search space.")
    tune: TuneSpec = TuneSpec()


def _accepted_training_keys(algorithm: str) -> set[str]:
    from rsc.rl.catalog import ALGORITHMS  # RLlib import only when a spec is checked

    keys: set[str] = set()
    for klass in ALGORITHMS[algorithm].__mro__:
        method = klass.__dict__.get("training")
        if method is None:
            continue
        for name, parameter in inspect.signature(method).parameters.items():
            if name != "self" and parameter.kind == parameter.KEYWORD_ONLY and parameter.default != -1:
                keys.add(name)
    return keys


def _accepted_reporting_keys() -> set[str]:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    parameters = inspect.signature(AlgorithmConfig.reporting).parameters
    return {name for name, parameter in parameters.items() if parameter.kind == parameter.KEYWORD_ONLY}


def _accepted_model_keys() -> set[str]:
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return set(DefaultModelConfig.__dataclass_fields__)


def load_algorithm_spec(path: str | Path, overrides: tuple[str, ...] = ()) -> AlgorithmSpec:
    """Read and check one rllib_configs YAML; every unknown key is an error naming file and key."""
    spec = load_model(AlgorithmSpec, [path], overrides)
    training_keys = _accepted_training_keys(spec.algorithm)
    for section, keys, accepted in (
        ("env_config", spec.env_config, set(EnvSettings.model_fields)),
        ("training", spec.training, training_keys),
        ("reporting", spec.reporting, _accepted_reporting_keys()),
        ("model", spec.model, _accepted_model_keys()),
        ("search_space", spec.search_space, training_keys),
    ):
        unknown = sorted(set(keys) - accepted)
        if unknown:
            target = {
                "env_config": "the env settings",
                "model": "DefaultModelConfig",
                "reporting": "AlgorithmConfig.reporting()",
            }.get(section, f"{spec.algorithm}Config.training()")
            raise ConfigError(f"unknown key '{section}.{unknown[0]}' in {path}: not a field of {target}")
    for key, why in UNCARRIED_MODEL_OPTIONS.items():
        if spec.model.get(key):
            raise ConfigError(f"model.{key} in {path}: {why}")
    return spec


def effective_env(spec: AlgorithmSpec, env: EnvSettings) -> EnvSettings:
    """The run's env settings with the algorithm's overrides (e.g. SAC needs continuous actions)."""
    try:
        return EnvSettings.model_validate({**env.model_dump(), **spec.env_config})
    except ValueError as error:
        raise ConfigError(f"env_config of the {spec.algorithm} config: {error}") from error


def resolve_spec_path(path: str) -> Path:
    """A spec path as given, else relative to the project root (where rllib_configs/ lives)."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    project = Path(__file__).resolve().parents[3] / path
    if project.is_file():
        return project
    raise ConfigError(f"algorithm config not found: {path}")
