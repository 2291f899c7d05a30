"""PPO learner throughput on the rsc env: a CPU learner against a GPU learner, in one run.

The same rllib_configs/ppo.yaml (new API stack) on the bundled S&P 500 bars, with a larger network and
batch so that the learner's update is the work being measured. For each learner device it prints the
env steps trained per second of learner update time (RLlib's ``learner_update_timer``) and the
iteration time; the CPU learner is the baseline. Without a GPU only the CPU row is printed.

    python benchmarks/gpu_learner.py [--iterations 4] [--batch 16000] [--runners 4]
"""

from __future__ import annotations

import rsc  # noqa: F401  (sets Ray's token auth mode, which must precede importing ray)

# isort: split

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from benchmarks.env_throughput import sp500_bars
from rsc.config.settings import EnvSettings
from rsc.core.features import Bars, IndicatorRef, compute_features, feature_names
from rsc.core.observation import observation_size
from rsc.core.schema import OHLCV_COLUMNS, PART, TIMESTAMP
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.spec import load_algorithm_spec
from rsc.storage import Storage

PROJECT = Path(__file__).resolve().parents[1]

INDICATORS = [
    IndicatorRef(n, w)
    for n, w in [("log_return", 1), ("log_return", 5), ("sma_ratio", 20), ("rsi", 14), ("volatility", 20)]
]


def write_dataset(root: Path) -> tuple[str, str]:
    """The bundled S&P 500 bars with features, a train/validation split, and the train-only scaler."""
    frame = sp500_bars()
    names = feature_names(INDICATORS)
    frame[names] = compute_features(
        Bars.from_columns({c: frame[c].to_numpy() for c in OHLCV_COLUMNS}), INDICATORS
    )
    frame = frame.dropna().reset_index(drop=True)
    frame[PART] = np.where(frame[TIMESTAMP] < "2016-01-01", "train", "validation")
    train = frame.loc[frame[PART] == "train", names]
    scaler = {"columns": names, "mean": train.mean().tolist(), "std": train.std(ddof=0).tolist()}
    storage = Storage()
    dataset_uri, scaler_uri = f"file://{root}/data", f"file://{root}/scaler.json"
    storage.write_dataset(dataset_uri, frame)
    storage.write_json(scaler_uri, scaler)
    return dataset_uri, scaler_uri


def measure(dataset_uri: str, scaler_uri: str, gpus: float, args: argparse.Namespace) -> dict[str, float]:
    env = EnvSettings(window=30, positions=(-1.0, 0.0, 1.0))
    spec = load_algorithm_spec(
        PROJECT / "rllib_configs" / "ppo.yaml",
        (
            f"resources.num_env_runners={args.runners}",
            "resources.num_envs_per_env_runner=4",
            "resources.num_learners=0",
            f"resources.num_gpus_per_learner={gpus}",
            f"model.fcnet_hiddens=[{args.hidden}, {args.hidden}]",
        ),
    )
    environment = env_config(dataset_uri, scaler_uri, "train", env, eval_every=10_000)
    config = build_algorithm_config(
        spec,
        environment,
        seed=0,
        training={
            "train_batch_size_per_learner": args.batch,
            "minibatch_size": args.minibatch,
            "num_epochs": 10,
        },
    )
    algo = config.build_algo()
    try:
        algo.train()  # warm-up: CUDA context, kernels, buffers
        updates, iterations = [], []
        for _ in range(args.iterations):
            started = time.perf_counter()
            result = algo.train()
            iterations.append(time.perf_counter() - started)
            updates.append(result["timers"]["learner_update_timer"])
    finally:
        algo.stop()
    update = float(np.median(updates))
    return {
        "learner_steps_per_s": args.batch / update,
        "update_s": update,
        "iteration_s": float(np.median(iterations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16_000)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--minibatch", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=512, help="width of the two hidden layers")
    args = parser.parse_args()
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    device = torch.cuda.get_device_name(0) if gpus else "none"
    with tempfile.TemporaryDirectory() as root:
        dataset_uri, scaler_uri = write_dataset(Path(root))
        rows = {"CPU learner": measure(dataset_uri, scaler_uri, 0, args)}
        if gpus:
            rows["GPU learner"] = measure(dataset_uri, scaler_uri, 1, args)
    ray.shutdown()
    baseline = rows["CPU learner"]["learner_steps_per_s"]
    print(
        f"PPO, MLP {args.hidden}x{args.hidden}, batch {args.batch}, minibatch {args.minibatch}, 10 epochs, "
        f"{args.runners} env runners; "
        f"observation size {observation_size(30, len(INDICATORS))}; GPU: {device}"
    )
    print(
        f"{'learner':12s} {'env steps trained/s':>20s} {'update s':>9s} {'iteration s':>12s} {'vs CPU':>7s}"
    )
    for name, row in rows.items():
        print(
            f"{name:12s} {row['learner_steps_per_s']:20,.0f} {row['update_s']:9.2f} "
            f"{row['iteration_s']:12.2f} {row['learner_steps_per_s'] / baseline:6.1f}x"
        )


if __name__ == "__main__":
    main()
