"""The execution costs of an env, with the bars per year taken from the bars themselves.

The borrow fee accrues per bar: its yearly rate is divided by the bars in a year, which a run on
hourly FX or 24/7 crypto bars must not take as 252. ``env.periods_per_year`` set wins; unset, the bars'
own spacing decides (:func:`rsc.core.metrics.infer_periods_per_year`, the evaluation's annualisation).
"""

from __future__ import annotations

import numpy as np

from rsc.config.settings import EnvSettings
from rsc.core import execution, metrics


def bars_per_year(configured: float | None, timestamps: np.ndarray) -> float:
    """``configured``, else the bars' own frequency (252 when there are too few bars to tell)."""
    if configured:
        return float(configured)
    if len(timestamps) < 3:
        return 252.0
    return metrics.infer_periods_per_year(np.asarray(timestamps)).periods_per_year


def env_costs(settings: EnvSettings, timestamps: np.ndarray) -> execution.Costs:
    """Commission, slippage, spread and borrow of ``settings``, the borrow accrued per bar of these bars."""
    return execution.Costs(
        settings.commission_bps,
        settings.slippage_bps,
        settings.spread_factor,
        settings.borrow_bps_per_year,
        bars_per_year(settings.periods_per_year, timestamps),
    )
