"""The promotion gate: evidence-backed decision to move ``champion`` to the challenger."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide_promotion(
    challenger: float,
    champion: float | None,
    benchmark: float,
    min_improvement: float,
    require_beat_benchmark: bool,
    metric: str,
) -> GateDecision:
    """Promote when the challenger beats the champion (and, if required, the benchmark) by the margin."""
    if require_beat_benchmark and challenger < benchmark + min_improvement:
        return GateDecision(
            False,
            f"{metric} {challenger:.4f} does not beat buy-and-hold {benchmark:.4f} by {min_improvement}",
        )
    if champion is None:
        return GateDecision(True, f"no champion yet; challenger {metric} {challenger:.4f}")
    if challenger < champion + min_improvement:
        return GateDecision(
            False, f"{metric} {challenger:.4f} does not beat champion {champion:.4f} by {min_improvement}"
        )
    return GateDecision(True, f"{metric} {challenger:.4f} beats champion {champion:.4f} by {min_improvement}")
