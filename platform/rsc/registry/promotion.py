"""Moving ``champion``: the gate's evidence read from MLflow, its decision recorded, promotion, rollback.

Every promotion appends to the registered model's champion history (tag ``rsc.champion_history``,
oldest first) and points the ``previous_champion`` alias at the champion it replaced. A rollback
moves ``champion`` back to the entry before the current one and drops the current one from the
history, so repeated rollbacks walk further back.

Each step of a version's life is also a model version tag ``rsc.event.<step>`` (JSON with the time):
``challenger_run`` (an alert on it started a challenger run), ``shadow_started``, ``shadow_decided``,
``promoted``, ``rolled_back``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rsc.config.settings import RegistrySettings
from rsc.registry.gate import GateDecision, GateEvidence, ShadowRecord, decide_after_shadow, decide_promotion
from rsc.registry.lineage import CONDITIONS_TAG, HISTORY_TAG, SEEN_UNTIL_TAG, TEST_WINDOW_TAG, Lineage
from rsc.registry.tracking import CHAMPION, ModelVersion, model_version, resolve_alias, set_alias, tag_version

Rescore = Callable[[str, int], float]  # (model, version) -> its figure on the challenger's test window

log = logging.getLogger(__name__)

PREVIOUS_CHAMPION = "previous_champion"
HISTORY_LIMIT = 100
TEST_PREFIX = "test"  # evaluation metrics are logged as test/<strategy>/<figure>
NOTE_TAG_PREFIX = "rsc.note."  # why a statistic of metrics.json is null (rsc.note.dsr, ...)
DSR = "dsr"
EVALUATION_TAG = "rsc.evaluation_uri"  # the metrics.json a version's test figures come from
EVENT_TAG_PREFIX = "rsc.event."
SHADOW_BARS_TAG = "rsc.shadow.bars"
SHADOW_STATUS_TAG = "rsc.shadow.status"  # pending, then promoted or refused
SHADOW_TEST_TAG = "rsc.shadow.test_window"  # the test-window decision the shadow record is added to
LIVE_RECORD_TAG = "rsc.live_record"  # the paper trader's latest decay figures of the version (JSON)
PERIODS_KEY = "test/conventions/periods_per_year"


def metric_key(strategy: str, figure: str) -> str:
    return f"{TEST_PREFIX}/{strategy}/{figure}"


def _not_comparable(champion: ModelVersion, challenger: ModelVersion) -> str | None:
    """Why the champion cannot be measured against the challenger, from the versions' lineage tags."""
    label = f"champion v{champion.version}"
    ours, theirs = Lineage.from_tags(challenger.tags), Lineage.from_tags(champion.tags)
    if ours is not None and theirs is not None and (why := theirs.differs_from(ours)):
        return (
            f"{label} is another lineage: {why.replace('it trades', 'this version trades')} "
            f"(champion: {theirs.describe()}, this version: {ours.describe()}); a lineage is one strategy on "
            "one universe at one bar size: register it under its own name (the derived "
            "registry.model_name does)"
        )
    window = challenger.tags.get(TEST_WINDOW_TAG)
    seen = champion.tags.get(SEEN_UNTIL_TAG)
    if window and seen and seen >= window.split("..")[0]:
        return (
            f"{label} trained or was selected on bars up to {seen}, inside this version's test window "
            f"{window}: it cannot be scored fairly there"
        )
    return None


def gate_evidence(name: str, version: int, metric: str, rescore: Rescore | None = None) -> GateEvidence:
    """The numbers to decide on: the version's own test metrics and the champion's on the same window.

    Args:
        rescore: the champion's figure on this version's test window, when its own test window or its
            evaluation conditions differ (``rsc.stages.champion_window``). Without one, such a champion
            is not comparable.
    """
    challenger = model_version(name, version)
    key = metric_key("policy", metric)
    if key not in challenger.metrics:
        raise LookupError(f"{name} version {version}: its run {challenger.run_id} has no metric {key!r}")
    benchmark, label = "buy_and_hold", "buy-and-hold"
    if metric_key(benchmark, metric) not in challenger.metrics and metric_key("equal_weight", metric) in (
        challenger.metrics
    ):  # a portfolio policy is judged against the equal-weight portfolio
        benchmark, label = "equal_weight", "equal weight"
    evidence = GateEvidence(
        metric=metric,
        challenger=challenger.metrics[key],
        buy_and_hold=challenger.metrics.get(metric_key(benchmark, metric), float("nan")),
        benchmark=label,
        deflated_sharpe=challenger.metrics.get(metric_key("statistics", DSR)),
        deflated_sharpe_note=challenger.run_tags.get(NOTE_TAG_PREFIX + DSR),
        window=challenger.tags.get(TEST_WINDOW_TAG),
    )
    champion_version = resolve_alias(name, CHAMPION)
    if champion_version is None or champion_version == version:
        return evidence
    champion = model_version(name, champion_version)
    recorded = champion.metrics.get(key)
    evidence = replace(evidence, champion_version=champion_version, champion_recorded=recorded)
    if why := _not_comparable(champion, challenger):
        return replace(evidence, not_comparable=why)
    same_window = all(
        champion.tags.get(tag) == challenger.tags.get(tag) is not None
        for tag in (TEST_WINDOW_TAG, CONDITIONS_TAG)
    )
    if same_window or evidence.window is None:  # its record is the figure (or nothing else is known)
        return replace(evidence, champion=recorded)
    if rescore is None:
        return replace(
            evidence,
            not_comparable=f"champion v{champion_version} was tested on "
            f"{champion.tags.get(TEST_WINDOW_TAG, 'another window')} and nothing here can score it on "
            f"{evidence.window}: run the gate where the challenger's data is (the register stage does)",
        )
    try:
        figure = rescore(name, champion_version)
    except Exception as error:  # a champion that cannot be scored there is not compared, and says why
        return replace(
            evidence,
            not_comparable=f"champion v{champion_version} could not be re-scored on {evidence.window}: "
            f"{type(error).__name__}: {error}",
        )
    return replace(evidence, champion=figure, champion_rescored=True)


def run_gate(
    name: str,
    version: int,
    settings: RegistrySettings,
    rescore: Rescore | None = None,
    holdout: str | None = None,
) -> GateDecision:
    """The gate's decision; ``holdout`` (the final holdout's line) goes on the record unjudged."""
    evidence = gate_evidence(name, version, settings.promotion_metric, rescore)
    return decide_promotion(replace(evidence, holdout=holdout), settings)


def record_decision(name: str, version: int, decision: GateDecision, forced: bool = False) -> None:
    """The decision and its numbers on the version's run (tags, ``gate/*`` metrics, a JSON artifact)
    and on the model version (tags), where ``rsc registry list`` shows it."""
    run_id = MlflowClient().get_model_version(name, str(version)).run_id
    evidence = decision.evidence
    numbers = {
        "gate/challenger": evidence.challenger,
        "gate/buy_and_hold": evidence.buy_and_hold,
        "gate/champion": evidence.champion,
        "gate/champion_recorded": evidence.champion_recorded,
        "gate/deflated_sharpe": evidence.deflated_sharpe,
        "gate/promote": float(decision.promote),
    }
    document = {**decision.to_json(), "version": version, "forced": forced}
    _log_to_run(run_id, numbers, decision.promote, decision.reason, document)
    tags = {"rsc.gate.promote": str(decision.promote), "rsc.gate.reason": decision.reason}
    if forced:
        tags["rsc.gate.forced"] = "true"
    tag_version(name, version, tags)
    log.info("gate: %s version %d: %s", name, version, decision.reason)


def _log_to_run(
    run_id: str, numbers: Mapping[str, float | None], promote: bool, reason: str, document: dict
) -> None:
    """A gate decision on the version's run: ``gate/*`` metrics (missing ones left out), the verdict
    as tags, ``document`` as ``gate/<time>.json``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: float(v) for k, v in numbers.items() if v is not None and v == v})
        mlflow.set_tags({"rsc.gate.promote": str(promote), "rsc.gate.reason": reason})
        mlflow.log_dict(document, f"gate/{stamp}.json")


def test_figures(name: str, version: int) -> tuple[float, float, float] | None:
    """The version's test-period (Sharpe, maximum drawdown, bars per year), None when not stored (or
    there is no such version)."""
    try:
        stored = model_version(name, version).metrics
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    keys = (metric_key("policy", "sharpe"), metric_key("policy", "max_drawdown"), PERIODS_KEY)
    if any(key not in stored for key in keys):
        return None
    sharpe, drawdown, periods = (stored[key] for key in keys)
    return sharpe, drawdown, periods


def publish_live_record(name: str, version: int, record: Mapping[str, Any]) -> None:
    """The paper trader's latest figures of ``version`` where reports and ``rsc registry list`` read them."""
    tag_version(name, version, {LIVE_RECORD_TAG: json.dumps(dict(record), default=str)})


def live_record(name: str, version: int) -> dict[str, Any] | None:
    text = model_version(name, version).tags.get(LIVE_RECORD_TAG)
    return json.loads(text) if text else None


def champion_live_record(name: str) -> dict[str, Any] | None:
    """The champion's latest paper record (with its backtest figures), None without either."""
    version = resolve_alias(name, CHAMPION)
    record = live_record(name, version) if version is not None else None
    return None if record is None else {**record, "version": version}


def record_event(name: str, version: int, step: str, details: Mapping[str, Any]) -> None:
    """One step of ``version``'s life as the tag ``rsc.event.<step>``: ``details`` and the time (UTC)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    value = json.dumps({"at": stamp, **details}, default=str)
    MlflowClient().set_model_version_tag(name, str(version), EVENT_TAG_PREFIX + step, value)


def start_shadow(name: str, version: int, bars: int, decision: GateDecision) -> GateDecision:
    """``version`` passed the test window: it stays ``@challenger`` for ``bars`` bars of shadow trading
    before the gate decides; returns the decision to record now (no promotion yet). A version still
    waiting is superseded: ``@challenger`` no longer names it, so no trader will decide on it."""
    client = MlflowClient()
    for waiting in client.search_model_versions(f"name='{name}'"):
        if waiting.tags.get(SHADOW_STATUS_TAG) == "pending" and int(waiting.version) != version:
            client.set_model_version_tag(name, waiting.version, SHADOW_STATUS_TAG, "superseded")
            record_event(name, int(waiting.version), "shadow_superseded", {"by": version})
    tag_version(
        name,
        version,
        {SHADOW_BARS_TAG: str(bars), SHADOW_STATUS_TAG: "pending", SHADOW_TEST_TAG: decision.reason},
    )
    record_event(name, version, "shadow_started", {"bars": bars, "test_window": decision.reason})
    reason = f"in shadow for {bars} bars before the gate decides; test window: {decision.reason}"
    return replace(decision, promote=False, reason=reason)


def shadow_pending(name: str, version: int) -> int | None:
    """The shadow bars ``version`` waits for, or None when it is not waiting (decided, or never was)."""
    tags = MlflowClient().get_model_version(name, str(version)).tags
    if tags.get(SHADOW_STATUS_TAG) != "pending":
        return None
    return int(tags[SHADOW_BARS_TAG])


def conclude_shadow(name: str, record: ShadowRecord, settings: RegistrySettings) -> tuple[bool, str]:
    """The gate's final word on a version back from shadow: recorded on its run and version, and the
    version promoted when the shadow record holds up. Returns (promoted, reason)."""
    client = MlflowClient()
    found = client.get_model_version(name, str(record.version))
    promoted, reason = decide_after_shadow(
        found.tags.get(SHADOW_TEST_TAG, "passed"), record, settings.shadow_margin
    )
    numbers = {
        "gate/shadow_challenger_return": record.challenger_return,
        "gate/shadow_champion_return": record.champion_return,
        "gate/shadow_bars": float(record.bars),
        "gate/promote": float(promoted),
    }
    document = {"promote": promoted, "reason": reason, "shadow": asdict(record)}
    _log_to_run(found.run_id, numbers, promoted, reason, document)
    if promoted:  # before the status: a failure here leaves the version pending, to be decided again
        promote(name, record.version)
    tag_version(
        name,
        record.version,
        {
            "rsc.gate.promote": str(promoted),
            "rsc.gate.reason": reason,
            SHADOW_STATUS_TAG: "promoted" if promoted else "refused",
        },
    )
    record_event(name, record.version, "shadow_decided", {"promote": promoted, "shadow": asdict(record)})
    log.info("gate after shadow: %s version %d: %s", name, record.version, reason)
    return promoted, reason


def champion_history(name: str) -> list[int]:
    """Versions that were champion, oldest first (the last one is the champion unless moved by hand)."""
    tags = MlflowClient().get_registered_model(name).tags
    text = tags.get(HISTORY_TAG, "")
    return [int(v) for v in text.split(",") if v.strip()]


def _write_history(name: str, history: list[int]) -> None:
    value = ",".join(str(v) for v in history[-HISTORY_LIMIT:])
    MlflowClient().set_registered_model_tag(name, HISTORY_TAG, value)


def _with_current(name: str) -> tuple[int | None, list[int]]:
    """The champion and the history ending in it (a champion set outside this module is appended)."""
    current, history = resolve_alias(name, CHAMPION), champion_history(name)
    if current is not None and (not history or history[-1] != current):
        history.append(current)
    return current, history


def promote(name: str, version: int) -> int | None:
    """Make ``version`` the champion; returns the champion it replaced (None if none or itself)."""
    current, history = _with_current(name)
    if current == version:
        return None
    history.append(version)
    set_alias(name, CHAMPION, version)
    if current is not None:
        set_alias(name, PREVIOUS_CHAMPION, current)
    _write_history(name, history)
    record_event(name, version, "promoted", {"replaced": current})
    log.info("registry: %s champion %s -> %d", name, current, version)
    return current


def rollback(name: str) -> tuple[int, int]:
    """Move ``champion`` back to the previous champion; returns (from, to)."""
    current, history = _with_current(name)
    if current is None or len(history) < 2:
        raise LookupError(f"{name}: no earlier champion to roll back to (champion history {history})")
    rolled_back = history.pop()
    target = history[-1]
    client = MlflowClient()
    set_alias(name, CHAMPION, target)
    if len(history) >= 2:
        set_alias(name, PREVIOUS_CHAMPION, history[-2])
    else:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    _write_history(name, history)
    client.set_model_version_tag(
        name, str(rolled_back), "rsc.rolled_back", json.dumps({"to": target, "at": time.time()})
    )
    record_event(name, rolled_back, "rolled_back", {"to": target})
    log.info("registry: %s rolled back champion %d -> %d", name, rolled_back, target)
    return rolled_back, target
