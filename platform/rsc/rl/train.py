"""``rsc train``'s loop: train to the stopping criteria, keep the best checkpoint by validation metric.

Progress is committed to storage as it goes, so that a killed process resumes where it stopped:

- ``<output>/progress/latest-NNNNN/``: RLlib checkpoint of the latest saved iteration;
- ``<output>/progress/best-NNNNN/``: RLlib checkpoint and exported network of the best iteration;
- ``<output>/progress/state.json``: the commit record (iteration, best, history, the two folders
  above), written after the folders it names, so it never points at a half-uploaded checkpoint.

When training ends, the best iteration is published as ``<output>/checkpoint/`` and
``<output>/network.pt``, the layout the evaluation, registry and serving code read.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rsc.core.schema import CHECKPOINT_DIR, NETWORK_FILE
from rsc.rl.callbacks import EVAL_KEY, FRESH_KEY, RETURNS_KEY
from rsc.rl.policy import export_network, state_shape
from rsc.storage import Storage, join

log = logging.getLogger(__name__)

PROGRESS_DIR = "progress"
STATE_FILE = "state.json"


@dataclass
class TrainState:
    """What survives a crash: enough to resume and to know the best iteration so far."""

    iteration: int = 0
    best_value: float = -math.inf
    best_iteration: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_returns: list[float] = field(default_factory=list)
    latest_dir: str | None = None
    best_dir: str | None = None
    resumed_from: list[int] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    validations: int = 0  # validation backtests the best-checkpoint choice looked at


@dataclass
class TrainingOutcome:
    best_iteration: int
    best_metrics: dict[str, float]
    checkpoint_uri: str
    network_uri: str
    history: list[dict[str, Any]]
    resumed_from: list[int]
    best_returns: list[float]  # validation bar returns of the best iteration
    recurrent_state: dict[str, tuple[int, ...]] = field(
        default_factory=dict
    )  # key -> shape; {} = feed-forward
    validations: int = 0  # validation backtests the best-checkpoint choice looked at


def iteration_row(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of one RLlib result that we log and compare."""
    runners = result.get(ENV_RUNNER_RESULTS, {})
    eval_values = {k: v for k, v in result.get(EVAL_KEY, {}).items() if isinstance(v, int | float)}
    return {
        "iteration": int(result["training_iteration"]),
        "episode_return_mean": _finite_or_none(runners.get(EPISODE_RETURN_MEAN)),
        "env_steps": _finite_or_none(
            result.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME))
        ),
        **{f"{EVAL_KEY}/{k}": float(v) for k, v in eval_values.items()},
    }


def _finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def load_state(storage: Storage, output_uri: str) -> TrainState | None:
    uri = join(output_uri, PROGRESS_DIR, STATE_FILE)
    return TrainState(**storage.read_json(uri)) if storage.exists(uri) else None


def _save_state(storage: Storage, output_uri: str, state: TrainState) -> None:
    storage.write_json(join(output_uri, PROGRESS_DIR, STATE_FILE), asdict(state))


def _prune(storage: Storage, output_uri: str, keep: set[str | None]) -> None:
    """Remove progress folders that the committed state no longer names."""
    fs, path = storage.filesystem(join(output_uri, PROGRESS_DIR))
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name != STATE_FILE and name not in keep:
            fs.rm(entry, recursive=True)


def train_algorithm(
    config: AlgorithmConfig,
    iterations: int,
    output_uri: str,
    storage: Storage,
    observation_size: int,
    metric: str = "eval/sharpe",
    checkpoint_every: int = 1,
    resume: bool = False,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> TrainingOutcome:
    """Train until ``iterations``, committing progress every ``checkpoint_every`` iterations.

    Args:
        resume: continue from ``<output>/progress`` when it exists (else start fresh).
    """
    algo = config.build_algo()
    recurrent = state_shape(algo.get_module())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            state = load_state(storage, output_uri) if resume else None
            if state is not None and state.latest_dir:
                local = storage.download_dir(
                    join(output_uri, PROGRESS_DIR, state.latest_dir), work / "restore"
                )
                algo.restore_from_path(str(local))
                state.resumed_from.append(state.iteration)
                log.info(
                    "resuming from iteration %d (best %s at %s)",
                    state.iteration,
                    state.best_value,
                    state.best_iteration,
                )
            state = state or TrainState()
            while algo.iteration < iterations:
                result = algo.train()
                row = iteration_row(result)
                state.iteration = row["iteration"]
                state.history.append(row)
                state.validations += int(bool(result.get(FRESH_KEY)))
                if on_iteration:
                    on_iteration(row)
                value = row.get(metric)
                improved = value is not None and value > state.best_value
                if improved:
                    state.best_value, state.best_iteration = value, row["iteration"]
                    state.best_metrics = {k: v for k, v in row.items() if k.startswith(f"{EVAL_KEY}/")}
                    state.best_returns = [float(r) for r in result.get(RETURNS_KEY, [])]
                    state.best_dir = f"best-{row['iteration']:05d}"
                    local = work / state.best_dir
                    algo.save_to_path(str(local / CHECKPOINT_DIR))
                    export_network(algo.get_module(), observation_size, local / NETWORK_FILE)
                    storage.upload_dir(local, join(output_uri, PROGRESS_DIR, state.best_dir))
                if improved or row["iteration"] % checkpoint_every == 0 or row["iteration"] >= iterations:
                    state.latest_dir = f"latest-{row['iteration']:05d}"
                    local = work / state.latest_dir
                    algo.save_to_path(str(local))
                    storage.upload_dir(local, join(output_uri, PROGRESS_DIR, state.latest_dir))
                    _save_state(storage, output_uri, state)
                    _prune(storage, output_uri, {state.latest_dir, state.best_dir})
            if state.best_dir is None:
                raise RuntimeError(f"metric {metric!r} never appeared in the training results")
            best = storage.download_dir(join(output_uri, PROGRESS_DIR, state.best_dir), work / "published")
            storage.upload_dir(best / CHECKPOINT_DIR, join(output_uri, CHECKPOINT_DIR))
            storage.write_bytes(join(output_uri, NETWORK_FILE), (best / NETWORK_FILE).read_bytes())
    finally:
        algo.stop()
    return TrainingOutcome(
        best_iteration=int(state.best_iteration),
        best_metrics=state.best_metrics,
        checkpoint_uri=join(output_uri, CHECKPOINT_DIR),
        network_uri=join(output_uri, NETWORK_FILE),
        history=state.history,
        resumed_from=state.resumed_from,
        best_returns=state.best_returns,
        recurrent_state=recurrent,
        validations=state.validations,
    )
