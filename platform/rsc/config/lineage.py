"""The registered model name of a lineage: ``rsc-<strategy>-<universe>-<frequency>``.

Here, beside the settings, so that ``Settings.model_name`` can derive it; ``rsc.registry.lineage``
records and compares lineages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_MAX_NAMED_SYMBOLS = 3


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def universe_label(symbols: Iterable[str]) -> str:
    """``spx``, ``aapl_msft``; ``all`` for ``*``; more than three: ``12sym-<hash of the sorted list>``."""
    ordered = sorted({str(s) for s in symbols})
    if not ordered:
        raise ValueError("a universe needs at least one symbol")
    if ordered == ["*"]:
        return "all"
    if len(ordered) > _MAX_NAMED_SYMBOLS:
        digest = hashlib.sha256(",".join(ordered).encode()).hexdigest()[:8]
        return f"{len(ordered)}sym-{digest}"
    return "_".join(_slug(s) or "x" for s in ordered)


def lineage_model_name(strategy: str, symbols: Iterable[str], frequency: str, kind: str = "single") -> str:
    """``rsc-demo-spx-1d``: one registered model per strategy, universe and bar frequency; a portfolio
    policy's lineage is named apart (``rsc-alloc-portfolio-10sym-1a2b3c4d-1d``), so it never shares a
    model (or a champion) with a single-asset policy of the same symbols."""
    kind_part = "portfolio-" if kind == "portfolio" else ""
    return f"rsc-{_slug(strategy) or 'policy'}-{kind_part}{universe_label(symbols)}-{frequency}"
