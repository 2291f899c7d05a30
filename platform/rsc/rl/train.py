"""``rsc train``'s loop: train to the stopping criteria, keep the best checkpoint by validation metric."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rsc.core.schema import CHECKPOINT_DIR, NETWORK_FILE
from rsc.rl.callbacks import EVAL_KEY
from rsc.rl.policy import export_network
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_iteration: int
    best_metrics: dict[str, float]
    checkpoint_uri: str
    network_uri: str
    history: list[dict[str, Any]] = field(default_factory=list)


def iteration_row(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of one RLlib result that we log and compare."""
    runners = result.get(ENV_RUNNER_RESULTS, {})
    return {
        "iteration": result["training_iteration"],
        "episode_return_mean": runners.get(EPISODE_RETURN_MEAN),
        "env_steps": result.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME)),
        **{f"{EVAL_KEY}/{k}": v for k, v in result.get(EVAL_KEY, {}).items()},
    }


def train_algorithm(
    config: AlgorithmConfig,
    iterations: int,
    output_uri: str,
    storage: Storage,
    observation_size: int,
    metric: str = "eval/sharpe",
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train, validate each iteration (via the callback), and store the best checkpoint and network.

    ``output_uri/checkpoint`` holds RLlib's checkpoint of the best iteration and
    ``output_uri/network.pt`` its exported inference network.
    """
    algo = config.build_algo()
    history: list[dict[str, Any]] = []
    best_value, best_row = float("-inf"), None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            best_dir = Path(tmp) / "best"
            for _ in range(iterations):
                row = iteration_row(algo.train())
                history.append(row)
                if on_iteration:
                    on_iteration(row)
                value = row.get(metric)
                if value is not None and value > best_value:
                    best_value, best_row = value, row
                    algo.save_to_path(str(best_dir / CHECKPOINT_DIR))
                    export_network(algo.get_module(), observation_size, best_dir / NETWORK_FILE)
            if best_row is None:
                raise RuntimeError(f"metric {metric!r} never appeared in the training results")
            storage.upload_dir(best_dir / CHECKPOINT_DIR, join(output_uri, CHECKPOINT_DIR))
            storage.write_bytes(join(output_uri, NETWORK_FILE), (best_dir / NETWORK_FILE).read_bytes())
    finally:
        algo.stop()
    return TrainResult(
        best_iteration=best_row["iteration"],
        best_metrics={k: v for k, v in best_row.items() if k.startswith(f"{EVAL_KEY}/")},
        checkpoint_uri=join(output_uri, CHECKPOINT_DIR),
        network_uri=join(output_uri, NETWORK_FILE),
        history=history,
    )
