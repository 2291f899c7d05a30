"""``rsc report RUN``: rebuild a run's evaluation (report.html and metrics.json) from what it stored.

The run's split dataset, fitted scaler and exported policy are read back from
``<storage.root>/<RUN>/``, and the evaluate stage runs again on them, so a report made by older code
(or one that was deleted) is rebuilt with the current metrics, benchmarks and statistics.
"""

from __future__ import annotations

from rsc.config import Settings
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout


def rebuild(cfg: Settings):
    """Re-run the evaluate stage on the run's stored artifacts; returns its EvaluateResult."""
    from rsc.stages import evaluate  # torch and matplotlib only when a report is asked for

    storage = Storage.from_settings(cfg.storage)
    layout = RunLayout(cfg.run_root)
    # What a run must have stored for its evaluation to be rebuilt (written by split and train).
    required = (join(layout.split, "manifest.json"), layout.scaler, layout.policy)
    missing = [uri.removeprefix(cfg.run_root + "/") for uri in required if not storage.exists(uri)]
    if missing:
        raise FileNotFoundError(
            f"run {cfg.run.name!r} under {cfg.storage.root} lacks {', '.join(missing)}: "
            "run the pipeline (rsc run) for it first"
        )
    return evaluate.run(cfg, layout.split, layout.scaler, layout.model)
