"""register: log the policy and its evidence to MLflow, register a version, run the promotion gate."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsc.config import Settings
from rsc.core.schema import POLICY_FILE, TEST
from rsc.registry.gate import decide_promotion
from rsc.registry.policy import Policy
from rsc.registry.tracking import (
    CHAMPION,
    configure,
    log_policy,
    model_version,
    register_policy,
    resolve_alias,
    set_alias,
)
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterResult:
    model_name: str
    version: int
    champion_version: int | None
    promoted: bool
    reason: str


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def numeric_leaves(values: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of a nested mapping (MLflow metrics); text, lists and nulls stay in the artifact."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            nested = numeric_leaves(value)
            if nested:
                out[key] = nested
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    return out


def run(cfg: Settings, split_uri: str, model_uri: str, metrics_uri: str, report_uri: str) -> RegisterResult:
    storage = Storage.from_settings(cfg.storage)
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    results = storage.read_json(metrics_uri)
    metric = cfg.registry.promotion_metric
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = storage.download_dir(model_uri, Path(tmp) / "policy")
        policy = Policy.load(policy_dir)
        test = storage.read_dataset(split_uri).query(f"part == '{TEST}'")
        evidence = Path(tmp) / "evidence"
        evidence.mkdir()
        (evidence / "report.html").write_bytes(storage.read_bytes(report_uri))
        (evidence / "metrics.json").write_text(json.dumps(results, indent=2))
        spec = json.loads((policy_dir / POLICY_FILE).read_text())
        uri = log_policy(
            policy_dir,
            input_example=test.tail(policy.min_bars),
            params={
                "algorithm": spec["algorithm"],
                "hyperparameters": spec["hyperparameters"],
                "env": spec["env"],
                "best_iteration": spec["best_iteration"],
            },
            metrics={
                "test": numeric_leaves(results),
                "validation": {k.split("/", 1)[1]: v for k, v in spec["validation"].items()},
            },
            tags={
                "rsc.run": cfg.run.name,
                "rsc.git_commit": _git_commit(),
                "rsc.data.split_sha256": spec["inputs"]["split"],
                "rsc.checkpoint_uri": join(model_uri, "checkpoint"),
                "rsc.config": cfg.model_dump_json(),
            },
            artifacts={"report": evidence / "report.html", "metrics": evidence / "metrics.json"},
            run_name=cfg.run.name,
        )
    version = register_policy(uri, cfg.registry.model_name)
    champion = resolve_alias(cfg.registry.model_name, CHAMPION)
    champion_value = (
        model_version(cfg.registry.model_name, champion).metrics.get(f"test/policy/{metric}")
        if champion
        else None
    )
    decision = decide_promotion(
        challenger=results["policy"][metric],
        champion=champion_value,
        benchmark=results["buy_and_hold"][metric],
        min_improvement=cfg.registry.min_improvement,
        require_beat_benchmark=cfg.registry.require_beat_benchmark,
        metric=metric,
    )
    if decision.promote:
        set_alias(cfg.registry.model_name, CHAMPION, version)
        champion = version
    log.info(
        "register: %s version %d; promote=%s (%s)",
        cfg.registry.model_name,
        version,
        decision.promote,
        decision.reason,
    )
    return RegisterResult(cfg.registry.model_name, version, champion, decision.promote, decision.reason)
