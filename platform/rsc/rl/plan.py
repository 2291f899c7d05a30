"""One training plan: run settings x algorithm YAML x tuned parameters, resolved in one place.

Where the run settings and ``rllib_configs/*.yaml`` overlap, this is the precedence, highest first
(every value of a plan says which one it came from):

- hyperparameters (``training``): the tuned best > the YAML's ``training``;
- env settings: the YAML's ``env_config`` (what the algorithm needs, e.g. SAC's continuous actions) >
  the run's ``env``;
- training iterations: ``train.iterations`` > the YAML's ``stop.training_iteration``;
- iterations per sweep trial: ``tune.iterations`` > the YAML's ``tune.iterations`` > its ``stop``;
- iterations per walk-forward candidate: ``tune.selection.iterations`` > the sweep's;
- trials: ``tune.num_samples`` > the YAML's ``tune.num_samples``;
- learner resources: ``cluster.gpus`` (GPU learners) > the YAML's ``resources``.

The train stage logs the plan to MLflow as the resolved config; ``rsc train --dry-run`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsc.config import Settings
from rsc.config.loader import ConfigError
from rsc.config.settings import EnvSettings
from rsc.rl.spec import AlgorithmSpec, effective_env, load_algorithm_spec, resolve_spec_path


@dataclass(frozen=True)
class Value:
    value: Any
    source: str  # "settings train.iterations", "ppo.yaml stop.training_iteration", "tuned", ...


@dataclass(frozen=True)
class TrainingPlan:
    spec_path: Path
    spec: AlgorithmSpec
    env: EnvSettings
    values: dict[str, Value]  # resolved key -> value and where it came from

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    @property
    def iterations(self) -> int:
        return int(self["train.iterations"])

    @property
    def sweep_iterations(self) -> int:
        return int(self["tune.iterations"])

    @property
    def selection_iterations(self) -> int:
        return int(self["tune.selection.iterations"])

    @property
    def num_samples(self) -> int:
        return int(self["tune.num_samples"])

    @property
    def training(self) -> dict[str, Any]:
        """``AlgorithmConfig.training()`` arguments after the tuned ones are applied."""
        prefix = "training."
        return {key.removeprefix(prefix): v.value for key, v in self.values.items() if key.startswith(prefix)}

    def resolved(self) -> dict[str, Any]:
        """``{key: value}`` (what MLflow records as the resolved config)."""
        return {key: v.value for key, v in self.values.items()}

    def table(self) -> list[tuple[str, str, str]]:
        """``(key, value, source)`` rows, sorted by key."""
        return [(key, repr(v.value), v.source) for key, v in sorted(self.values.items())]


def _first(*candidates: tuple[Any, str]) -> Value:
    """The first candidate whose value is set (not None)."""
    for value, source in candidates:
        if value is not None:
            return Value(value, source)
    raise ValueError(f"no value among {candidates}")


def resolve_plan(cfg: Settings, tuned: Mapping[str, Any] | None = None) -> TrainingPlan:
    """The plan of ``cfg``'s training with the tuned hyperparameters (``tune/best_params.json``) on top."""
    path = resolve_spec_path(cfg.train.algorithm_config)
    spec = load_algorithm_spec(path, cfg.cluster.learner_overrides)  # GPU learners when gpus > 0
    yaml = path.name
    env = effective_env(spec, cfg.env)
    if env.kind == "portfolio" and spec.algorithm == "DQN":
        raise ConfigError(
            f"env.kind=portfolio: {yaml} is DQN, which picks from discrete actions; portfolio weights are "
            "continuous: use PPO, APPO or SAC (rllib_configs/ppo.yaml, sac.yaml)"
        )
    if env.kind == "portfolio" and spec.model.get("use_lstm"):
        raise ConfigError(
            f"env.kind=portfolio: {yaml} asks for a recurrent model (model.use_lstm), which portfolio "
            "policies do not carry yet: use a feed-forward model"
        )
    values: dict[str, Value] = {"algorithm": Value(spec.algorithm, f"{yaml} algorithm")}
    for key, value in env.model_dump(mode="json").items():
        source = f"{yaml} env_config" if key in spec.env_config else "settings env"
        values[f"env.{key}"] = Value(value, source)
    tuned = dict(tuned or {})
    for key, value in {**spec.training, **tuned}.items():
        values[f"training.{key}"] = Value(value, "tuned" if key in tuned else f"{yaml} training")
    for key, value in spec.model.items():
        values[f"model.{key}"] = Value(value, f"{yaml} model")
    for key, value in spec.resources.model_dump().items():
        learner = key in ("num_learners", "num_gpus_per_learner") and cfg.cluster.gpus
        values[f"resources.{key}"] = Value(value, "settings cluster.gpus" if learner else f"{yaml} resources")
    values["train.iterations"] = _first(
        (cfg.train.iterations, "settings train.iterations"),
        (spec.stop.training_iteration, f"{yaml} stop.training_iteration"),
    )
    sweep = _first(
        (cfg.tune.iterations, "settings tune.iterations"),
        (spec.tune.iterations, f"{yaml} tune.iterations"),
        (spec.stop.training_iteration, f"{yaml} stop.training_iteration"),
    )
    values["tune.iterations"] = sweep
    values["tune.selection.iterations"] = _first(
        (cfg.tune.selection.iterations, "settings tune.selection.iterations"), (sweep.value, sweep.source)
    )
    values["tune.num_samples"] = _first(
        (cfg.tune.num_samples, "settings tune.num_samples"),
        (spec.tune.num_samples, f"{yaml} tune.num_samples"),
    )
    values["tune.metric"] = Value(spec.tune.metric, f"{yaml} tune.metric")
    values["train.metric"] = Value(cfg.train.metric, "settings train.metric")
    values["train.eval_every"] = Value(cfg.train.eval_every, "settings train.eval_every")
    return TrainingPlan(path, spec, env, values)
