"""Tune trials per hour on this machine for the demo's budget (configs/base.yaml + configs/local.yaml).

Runs the demo's sweep (the algorithm YAML's search space, Optuna + ASHA, the local overlay's number of
trials and iterations) on the bundled S&P 500 data and reports trials per hour, next to the time of one
trial's single training iteration measured in the same run as the baseline.

    python benchmarks/tune_trials.py [key=value ...]
"""

from __future__ import annotations

import rsc  # noqa: F401  (sets Ray's token auth mode, which must precede importing ray)

# isort: split

import sys
import tempfile
import time

from rsc.config import load_settings
from rsc.config.loader import default_config_paths
from rsc.rl.runtime import connect
from rsc.stages import features, ingest, split, tune


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        cfg = load_settings(
            default_config_paths("local"),
            [
                f"storage.root=file://{root}",
                "monitor.enabled=false",
                "tune.selection.walk_forward=false",
                *sys.argv[1:],
            ],
        )
        data = split.run(cfg, features.run(cfg, ingest.run(cfg).bars_uri).features_uri)
        connect(cfg.ray.address)
        one = load_settings(
            default_config_paths("local"),
            [
                f"storage.root=file://{root}",
                "monitor.enabled=false",
                "tune.num_samples=1",
                "tune.iterations=1",
                "tune.selection.walk_forward=false",
                "run.name=one",
            ],
        )
        started = time.perf_counter()
        tune.run(one, data.split_uri, data.scaler_uri)
        single = time.perf_counter() - started
        started = time.perf_counter()
        result = tune.run(cfg, data.split_uri, data.scaler_uri)
        sweep = time.perf_counter() - started
    print(
        f"demo sweep: {result.trials} trials x {cfg.tune.iterations} iterations in {sweep:.0f}s "
        f"-> {result.trials / sweep * 3600:.0f} trials/hour"
    )
    print(f"baseline: one trial of one iteration in {single:.0f}s; the sweep took {sweep / single:.1f}x that")


if __name__ == "__main__":
    main()
