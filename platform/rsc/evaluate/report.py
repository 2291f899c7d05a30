"""A self-contained HTML report: figures embedded as base64 PNG, metrics as a table."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def equity_figure(timestamps: np.ndarray, curves: Mapping[str, np.ndarray]) -> str:
    """Equity curves ``[N]`` on one time axis, as base64 PNG."""
    figure, axis = plt.subplots(figsize=(9, 4))
    for name, equity in curves.items():
        axis.plot(timestamps, equity, label=name)
    axis.set_title("Equity on the test period")
    axis.set_ylabel("equity")
    axis.grid(alpha=0.3)
    axis.legend()
    return _png(figure)


def render_html(
    title: str, metrics: Mapping[str, Mapping[str, float]], figures: Mapping[str, str], notes: str
) -> str:
    """One HTML page: a metrics table (rows = metrics, columns = strategies) and the figures."""
    strategies = list(metrics)
    names = sorted({k for values in metrics.values() for k in values})
    header = "".join(f"<th>{html.escape(s)}</th>" for s in strategies)
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td>"
        + "".join(f"<td>{metrics[s].get(n, float('nan')):.4f}</td>" for s in strategies)
        + "</tr>"
        for n in names
    )
    images = "".join(
        f'<figure><img alt="{html.escape(k)}" src="data:image/png;base64,{v}"/>'
        f"<figcaption>{html.escape(k)}</figcaption></figure>"
        for k, v in figures.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(notes)}</p>
<table><tr><th>metric</th>{header}</tr>{rows}</table>{images}</body></html>
"""
