"""``rsc report RUN``: rebuild a run's evaluation (report.html and metrics.json) from what it stored.

The run's split dataset, fitted scaler and exported policy are read back from
``<storage.root>/<RUN>/``, and the evaluate stage runs again on them, so a report made by older code
(or one that was deleted) is rebuilt with the current metrics, benchmarks and statistics.
"""

from __future__ import annotations

from rsc.config import Settings
from rsc.storage import Storage, join

# What a run must have stored for its evaluation to be rebuilt (written by split and train).
REQUIRED = {"split": "split/manifest.json", "scaler": "scaler.json", "policy": "model/policy.json"}


def rebuild(cfg: Settings):
    """Re-run the evaluate stage on the run's stored artifacts; returns its EvaluateResult."""
    from rsc.stages import evaluate  # torch and matplotlib only when a report is asked for

    storage = Storage.from_settings(cfg.storage)
    missing = [path for path in REQUIRED.values() if not storage.exists(join(cfg.run_root, path))]
    if missing:
        raise FileNotFoundError(
            f"run {cfg.run.name!r} under {cfg.storage.root} lacks {', '.join(missing)}: "
            "run the pipeline (rsc run) for it first"
        )
    return evaluate.run(
        cfg, join(cfg.run_root, "split"), join(cfg.run_root, "scaler.json"), join(cfg.run_root, "model")
    )
