"""Risk limits: target clipping before orders, kill switches after marks, and the guards' timings."""

from __future__ import annotations

from collections.abc import Mapping

from rsc.config.settings import RiskSettings
from rsc.core.execution import clip_weight
from rsc.paper.state import BookState

# A live feed is stale after this many bar intervals without a fresh bar (weekends and holidays fit).
STALE_INTERVALS = 5


def limit_targets(targets: Mapping[str, float], max_position: float, max_leverage: float) -> dict[str, float]:
    """Each target clipped to ``max_position``, then all scaled down together to ``max_leverage`` gross."""
    clipped = {symbol: clip_weight(target, max_position) for symbol, target in targets.items()}
    gross = sum(abs(w) for w in clipped.values())
    if gross > max_leverage:
        return {symbol: w * max_leverage / gross for symbol, w in clipped.items()}
    return clipped


def breach(book: BookState, limits: RiskSettings) -> str | None:
    """Why the kill switch must fire after the book's latest mark, or None."""
    if book.equity <= 0:
        return f"equity exhausted ({book.equity:.2f})"
    if limits.max_drawdown is not None and book.drawdown > limits.max_drawdown:
        return f"drawdown {book.drawdown:.2%} beyond max_drawdown {limits.max_drawdown:.2%}"
    if limits.max_daily_loss is not None and book.daily_loss > limits.max_daily_loss:
        return f"daily loss {book.daily_loss:.2%} beyond max_daily_loss {limits.max_daily_loss:.2%}"
    return None


def backoff_delays(retries: int, first_s: float, max_s: float) -> list[float]:
    """Waits before each retry of a failed decision request: doubling from ``first_s``, capped."""
    return [min(first_s * 2**attempt, max_s) for attempt in range(retries)]


def stale_after_s(limits: RiskSettings, interval_s: float) -> float:
    """Age beyond which a bar (or the wait for one) counts as stale data."""
    return limits.stale_after_s if limits.stale_after_s is not None else STALE_INTERVALS * interval_s
