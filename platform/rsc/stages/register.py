"""register: log the policy and its evidence to MLflow, register a version, run the promotion gate.

With ``registry.shadow_bars`` a version that passes the gate is not promoted yet: it stays
``@challenger`` and the paper trader (``paper.shadow``) runs it beside the champion for that many bars
before the gate decides on both records. Either way the decision is a Datadog event too.

The model and the evaluation go into the train run that produced the policy (found by its
``rsc.model_uri`` tag), so one run holds the training curve, the test metrics and the model. A policy
trained elsewhere (no such run) gets a run of its own with the same provenance tags.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rsc.config import Settings
from rsc.config.settings import EnvSettings
from rsc.core.policy_spec import PolicySpec
from rsc.core.schema import CHECKPOINT_DIR, SYMBOL, TEST, TIMESTAMP
from rsc.evaluate.verdict import holdout_line
from rsc.monitor import Event, sink_from_settings
from rsc.registry.lineage import CONDITIONS_TAG, SEEN_UNTIL_TAG, TEST_WINDOW_TAG, run_lineage
from rsc.registry.policy import Policy
from rsc.registry.promotion import (
    EVALUATION_TAG,
    NOTE_TAG_PREFIX,
    TEST_PREFIX,
    promote,
    record_decision,
    run_gate,
    start_shadow,
)
from rsc.registry.provenance import policy_tags
from rsc.registry.tracking import (
    CHAMPION,
    configure,
    find_training_run,
    load_version,
    log_policy,
    register_policy,
    resolve_alias,
    tag_version,
)
from rsc.stages.champion_window import conditions, window_rescorer
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterResult:
    model_name: str
    version: int
    champion_version: int | None
    promoted: bool
    reason: str
    run_id: str


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


def _provenance(cfg: Settings, model_uri: str, spec: PolicySpec) -> dict[str, str]:
    """What a train run records about its policy, for a policy that comes without one."""
    split_sha256 = spec.inputs.get("split", "unknown")
    return policy_tags(
        cfg.run.label, model_uri, join(model_uri, CHECKPOINT_DIR), {"rsc.data.split_sha256": split_sha256}
    )


def _test_window(results: Mapping[str, Any]) -> tuple[str, str] | None:
    """First and last date of the evaluated test period (metrics.json's ``period``)."""
    period = results.get("period") or {}
    if not period.get("start") or not period.get("end"):
        return None
    return str(period["start"])[:10], str(period["end"])[:10]


def _input_example(policy: Policy, test: pd.DataFrame) -> pd.DataFrame:
    """The bars the registered model's signature is inferred from: one window of one symbol, or of each
    symbol for a portfolio."""
    if policy.portfolio is not None:
        return test.sort_values(TIMESTAMP).groupby(SYMBOL).tail(policy.min_bars)
    if policy.universe is not None:
        test = test[test[SYMBOL] == policy.universe.symbols[0]]
    return test.tail(policy.min_bars)


def _not_rescorable(name: str, version: int) -> float:
    raise NotImplementedError(
        "re-scoring a champion on another test window is done for single-symbol policies only; this one "
        "trades a portfolio or a universe: compare them on the same window"
    )


def run(cfg: Settings, split_uri: str, model_uri: str, metrics_uri: str, report_uri: str) -> RegisterResult:
    storage = Storage.from_settings(cfg.storage)
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    results = storage.read_json(metrics_uri)
    train_run = find_training_run(model_uri)
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = storage.download_dir(model_uri, Path(tmp) / "policy")
        policy = Policy.load(policy_dir)
        test = storage.read_dataset(split_uri).query(f"part == '{TEST}'")
        evidence = Path(tmp) / "evidence"
        evidence.mkdir()
        (evidence / "report.html").write_bytes(storage.read_bytes(report_uri))
        (evidence / "metrics.json").write_text(json.dumps(results, indent=2))
        spec = policy.spec
        uri, run_id = log_policy(
            policy_dir,
            input_example=_input_example(policy, test),
            params={
                "algorithm": spec.algorithm,
                "hyperparameters": spec.hyperparameters,
                "env": spec.env,
                "best_iteration": spec.best_iteration,
            },
            metrics={
                TEST_PREFIX: numeric_leaves(results),
                "validation": {k.split("/", 1)[1]: v for k, v in spec.validation.items()},
            },
            tags={
                EVALUATION_TAG: metrics_uri,
                **{NOTE_TAG_PREFIX + k: str(v) for k, v in results.get("notes", {}).items()},
                **({} if train_run else _provenance(cfg, model_uri, spec)),
            },
            artifacts={"report": evidence / "report.html", "metrics": evidence / "metrics.json"},
            run_name=cfg.run.label,
            run_id=train_run,
            config=cfg.model_dump(mode="json"),
        )
    name = cfg.model_name
    version = register_policy(uri, name)
    frame = storage.read_dataset(split_uri)
    window = _test_window(results)
    env = EnvSettings.model_validate(spec.env) if spec.env else cfg.env  # as the evaluate stage ran it
    symbols = frame[SYMBOL].unique() if SYMBOL in frame.columns else cfg.data.symbols
    tag_version(
        name,
        version,
        {
            **run_lineage(cfg, symbols, frame[TIMESTAMP].to_numpy()).tags(),
            SEEN_UNTIL_TAG: str(cfg.split.validation_end),
            CONDITIONS_TAG: conditions(env, cfg.evaluate),
            **({TEST_WINDOW_TAG: "..".join(window)} if window else {}),
        },
    )
    rescore = None
    if window and (policy.portfolio or policy.universe):
        rescore = _not_rescorable
    elif window:
        symbol = cfg.data.symbols[0] if SYMBOL in frame.columns else None
        metric = cfg.registry.promotion_metric
        rescore = window_rescorer(frame, symbol, window, env, cfg.evaluate, metric, load_version)
    holdout = holdout_line(results["holdout"]) if results.get("holdout") else None
    decision = run_gate(name, version, cfg.registry, rescore, holdout)
    shadow_bars = cfg.registry.shadow_bars
    if decision.promote and shadow_bars and decision.evidence.champion_version is not None:
        decision = start_shadow(name, version, shadow_bars, decision)
        outcome = f"in shadow for {shadow_bars} bars"
    else:
        outcome = "promoted" if decision.promote else "refused"
    record_decision(name, version, decision)
    if decision.promote:
        promote(name, version)
    sink_from_settings(cfg.monitor, "rsc-register").send(
        Event(
            f"rsc registry: {name} v{version} {outcome}",
            decision.reason,
            "success" if decision.promote else "info",
            {"model_name": name, "model_version": str(version)},
            f"rsc-registry-{name}",
        )
    )
    log.info("register: %s version %d (run %s); %s", name, version, run_id, decision.reason)
    return RegisterResult(
        name, version, resolve_alias(name, CHAMPION), decision.promote, decision.reason, run_id
    )
