"""The promotion gate: the challenger becomes champion only on out-of-sample evidence.

The checks, each recorded with its numbers whether it passes or not:

0. the champion is comparable at all: the same universe and bar frequency (its lineage), and it never
   trained or was selected on the challenger's test window;
1. the challenger's test metric beats the champion's *on the challenger's test window* (the champion
   re-scored there, ``rsc.stages.champion_window``) by ``min_improvement`` (passes when there is no
   champion yet);
2. it beats buy-and-hold on the same test period by the same margin (``require_beat_benchmark``);
3. its deflated Sharpe ratio (Bailey & López de Prado, 2014) is above ``min_deflated_sharpe``. A run
   without a hyperparameter search has no DSR: ``missing_deflated_sharpe`` says whether that rejects
   the challenger or skips the check, and the decision says which.

With ``registry.shadow_bars`` a version that passes these waits as ``@challenger`` while the paper trader
runs it in shadow beside the champion; then :func:`decide_after_shadow` adds one more check, on the
shadow record, to the test-window decision, and both stand in the final decision's reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from rsc.config.settings import RegistrySettings

Outcome = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class GateEvidence:
    """The numbers the gate compares, read from the challenger's and the champion's runs."""

    metric: str
    challenger: float
    buy_and_hold: float
    champion: float | None = None  # the champion's figure on the challenger's test window
    champion_version: int | None = None
    deflated_sharpe: float | None = None
    deflated_sharpe_note: str | None = None  # why the DSR is missing, when it is
    window: str | None = None  # the challenger's test window, first..last date
    champion_recorded: float | None = None  # the champion's own figure, from its own test window
    champion_rescored: bool = False  # True: computed on the window; False: its recorded figure is that
    not_comparable: str | None = None  # why the champion cannot be compared (lineage or window)
    holdout: str | None = None  # the final holdout's line (recorded, never judged)
    benchmark: str = "buy-and-hold"  # what buy_and_hold is the figure of (a portfolio: equal weight)


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    checks: tuple[Check, ...]
    evidence: GateEvidence

    def to_json(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
            "evidence": asdict(self.evidence),
        }


def _beats(name: str, metric: str, value: float, other: float, other_name: str, margin: float) -> Check:
    passed = value > other + margin
    verb = "beats" if passed else "does not beat"
    return Check(
        name,
        "pass" if passed else "fail",
        f"{metric} {value:.4f} {verb} {other_name} {other:.4f} by {margin}",
    )


def _comparable_check(evidence: GateEvidence) -> Check:
    if evidence.not_comparable:
        return Check("comparable", "fail", evidence.not_comparable)
    if evidence.champion_version is None:
        return Check("comparable", "pass", "no champion yet")
    return Check(
        "comparable",
        "pass",
        f"champion v{evidence.champion_version}: same universe and bar size, never saw this window",
    )


def _champion_check(evidence: GateEvidence, margin: float) -> Check:
    if evidence.not_comparable:
        return Check("champion", "skip", "no comparison: the champion is not comparable")
    if evidence.champion is None:
        return Check("champion", "pass", "no champion yet")
    label = f"champion v{evidence.champion_version}" if evidence.champion_version else "champion"
    if evidence.window:
        how = "re-scored" if evidence.champion_rescored else "as recorded"
        label += f" on {evidence.window} ({how}"
        if evidence.champion_recorded is not None and evidence.champion_rescored:
            label += f"; {evidence.champion_recorded:.4f} on its own window"
        label += ")"
    return _beats("champion", evidence.metric, evidence.challenger, evidence.champion, label, margin)


def _benchmark_check(evidence: GateEvidence, margin: float, required: bool) -> Check:
    check = _beats(
        "buy_and_hold",
        evidence.metric,
        evidence.challenger,
        evidence.buy_and_hold,
        evidence.benchmark,
        margin,
    )
    if required or check.outcome == "pass":
        return check
    return Check(check.name, "skip", f"{check.detail} (not required: registry.require_beat_benchmark)")


def _deflated_check(evidence: GateEvidence, settings: RegistrySettings) -> Check:
    threshold, dsr = settings.min_deflated_sharpe, evidence.deflated_sharpe
    if threshold is None:
        return Check("deflated_sharpe", "skip", "no DSR threshold (registry.min_deflated_sharpe is null)")
    if dsr is None:
        why = evidence.deflated_sharpe_note or "not available for this run"
        if settings.missing_deflated_sharpe == "skip":
            return Check("deflated_sharpe", "skip", f"deflated Sharpe {why}; check skipped")
        return Check("deflated_sharpe", "fail", f"deflated Sharpe {why}; a DSR above {threshold} is required")
    passed = dsr > threshold
    return Check(
        "deflated_sharpe",
        "pass" if passed else "fail",
        f"deflated Sharpe {dsr:.4f} {'is' if passed else 'is not'} above {threshold}",
    )


@dataclass(frozen=True)
class ShadowRecord:
    """The challenger's paper record beside the champion, over the same bars, fills and costs."""

    version: int
    bars: int
    challenger_return: float
    champion_return: float
    champion_version: int | None = None
    halted: str | None = None  # the challenger's kill switch fired: why


def shadow_check(record: ShadowRecord, margin: float) -> Check:
    if record.halted:
        return Check(
            "shadow",
            "fail",
            f"in shadow its kill switch fired after {record.bars} bars ({record.halted}), return "
            f"{record.challenger_return:+.4%} against the champion's {record.champion_return:+.4%}",
        )
    passed = record.challenger_return >= record.champion_return + margin
    verb = "reaches" if passed else "falls short of"
    champion = f"champion v{record.champion_version}" if record.champion_version else "the champion"
    return Check(
        "shadow",
        "pass" if passed else "fail",
        f"in shadow over {record.bars} bars its return {record.challenger_return:+.4%} {verb} "
        f"{champion}'s {record.champion_return:+.4%} on the same bars plus {margin}",
    )


def decide_after_shadow(test_window: str, record: ShadowRecord, margin: float) -> tuple[bool, str]:
    """The final decision of a version that passed the test window (``test_window``: that decision's
    reason) on its shadow record; the reason states both."""
    check = shadow_check(record, margin)
    promote = check.outcome == "pass"
    verdict = "promote" if promote else "keep champion"
    return promote, f"{verdict}: [{check.outcome}] {check.detail}; test window: {test_window}"


def decide_promotion(evidence: GateEvidence, settings: RegistrySettings) -> GateDecision:
    """Promote when no check fails; the reason lists every check, passed, failed or skipped."""
    margin = settings.min_improvement
    checks = (
        _comparable_check(evidence),
        _champion_check(evidence, margin),
        _benchmark_check(evidence, margin, settings.require_beat_benchmark),
        _deflated_check(evidence, settings),
    )
    if evidence.holdout:  # shown, not judged: gating on it would make it one more selection window
        checks += (Check("holdout", "skip", f"not judged: {evidence.holdout}"),)
    promote = all(c.outcome != "fail" for c in checks)
    reason = f"{'promote' if promote else 'keep champion'}: " + "; ".join(
        f"[{c.outcome}] {c.detail}" for c in checks
    )
    return GateDecision(promote, reason, checks, evidence)
