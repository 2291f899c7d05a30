"""report.html of a portfolio policy: verdict, statistics, the allocation benchmarks, weights over time,
each asset's contribution and the turnover. Figures and tables share the single-asset report's style."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np

from rsc.evaluate import report
from rsc.evaluate.portfolio import EQUAL_WEIGHT, POLICY, PortfolioEvaluation

LABELS = {
    POLICY: "policy",
    EQUAL_WEIGHT: "equal weight",
    "min_variance": "min variance",
    "inverse_volatility": "inverse volatility",
}


def _label(name: str) -> str:
    return LABELS.get(name) or f"buy & hold {name.removeprefix('buy_and_hold_')}"


def equity_figure(ev: PortfolioEvaluation) -> str:
    figure, axis = report._axes(
        "Equity: policy against the allocation benchmarks (same costs and fills)", "equity"
    )
    for name, result in ev.backtests.items():
        if name != POLICY:
            faint = name.startswith("buy_and_hold_")  # one line per asset: kept in the background
            style = {"lw": 0.8, "alpha": 0.6} if faint else {"lw": 1.3}
            axis.plot(ev.timestamps, result.run.equity, label=_label(name), **style)
    axis.plot(ev.timestamps, ev.backtests[POLICY].run.equity, color="#d62728", lw=2.2, label="policy")
    axis.legend(loc="upper left", fontsize=8, ncol=4)
    return report._png(figure)


def weights_figure(ev: PortfolioEvaluation) -> str:
    """Stacked area of the policy's weight in each asset at each close (the rest is cash)."""
    figure, axis = report._axes(
        "Policy weights over time (stacked; the gap to the gross exposure is cash)", "weight"
    )
    weights = np.clip(ev.backtests[POLICY].weights, 0.0, None)
    axis.stackplot(ev.timestamps, weights.T, labels=list(ev.symbols))
    axis.set_ylim(0, max(1.0, float(weights.sum(axis=1).max()) * 1.05))
    axis.legend(loc="upper left", fontsize=8, ncol=min(len(ev.symbols), 10))
    return report._png(figure)


def contribution_figure(ev: PortfolioEvaluation) -> str:
    figure, axis = report._axes(
        "Contribution of each asset to the policy's return (before costs)", "return", 3.2
    )
    contribution = ev.backtests[POLICY].contribution()
    axis.bar(list(ev.symbols), contribution, color=np.where(contribution >= 0, "#2ca02c", "#d62728"))
    axis.axhline(0, color="#444", lw=0.8)
    return report._png(figure)


def _figures(ev: PortfolioEvaluation) -> dict[str, tuple[str, str]]:
    return {
        "equity": ("Equity of the policy and every allocation benchmark", equity_figure(ev)),
        "weights": ("The policy's weights over time", weights_figure(ev)),
        "contribution": ("Per-asset contribution to the policy's return", contribution_figure(ev)),
    }


def _metrics_table(results: Mapping[str, Mapping[str, float]]) -> str:
    names = list(results)
    rows = [
        [html.escape(label)] + [fmt(results[n][key]) if key in results[n] else "&mdash;" for n in names]
        for key, label, fmt in report.METRIC_ROWS
        if key not in ("trades", "win_rate", "profit_factor", "average_win", "average_loss")
    ]
    return report._table(["metric", *map(_label, names)], rows, "metrics")


def _alignment(ev: PortfolioEvaluation) -> str:
    if not ev.alignment:
        return "<p>Symbols on one calendar (no alignment recorded).</p>"
    a = ev.alignment
    rows = [
        [html.escape(name), report._int(s["bars"]), report._int(s["dropped"]), report._int(s["filled"])]
        for name, s in a["symbols"].items()
    ]
    return (
        f"<p>data.align = {html.escape(a['policy'])}: {a['bars']} shared bars, "
        f"{html.escape(str(a['start']))} to {html.escape(str(a['end']))}. Forward-filled bars are "
        "untradeable: a position is held through them.</p>"
        + report._table(["symbol", "own bars", "dropped", "forward-filled"], rows)
    )


def render_portfolio_report(ev: PortfolioEvaluation, live: Mapping[str, Any] | None = None) -> str:
    """The whole page as one HTML string."""
    first, last = report._stamp(ev.timestamps[0]), report._stamp(ev.timestamps[-1])
    policy = ev.metrics[POLICY]
    meta = (
        f"{len(ev.symbols)} assets ({html.escape(', '.join(ev.symbols))}), {first} to {last}: "
        f"{len(ev.timestamps) - 1} decisions. {html.escape(ev.annualisation.description)}. Costs "
        f"{ev.costs.commission_bps:g} bps commission + {ev.costs.slippage_bps:g} bps slippage per asset; "
        f"capital {ev.initial_cash:,.0f}. Policy turnover {policy['turnover']:.2f}x equity a year."
    )
    images = "".join(
        f'<figure><img class="figure" id="fig-{name}" data-figure="{name}" alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}"/><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, (caption, data) in _figures(ev).items()
    )
    quality = (
        "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in ev.data_quality) + "</ul>"
        if ev.data_quality
        else "<p>No data-quality warnings for the ingested bars.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(ev.title)}</title>
<style>{report._STYLE}</style></head>
<body><h1>{html.escape(ev.title)}</h1><p class="meta">{meta}</p>
<section id="verdict"><h2>Verdict</h2><p class="verdict">{html.escape(ev.verdict)}</p></section>
<section id="statistics"><h2>Honest statistics</h2>{report._statistics_table(ev)}</section>
<section id="metrics"><h2>Metrics</h2>{_metrics_table(ev.metrics)}
<p>{html.escape(ev.notes.get("benchmark", ""))}.</p></section>
<section id="figures"><h2>Figures</h2>{images}</section>
<section id="alignment"><h2>Calendar alignment</h2>{_alignment(ev)}</section>
<section id="folds"><h2>Walk-forward folds</h2>{report._folds_table(ev.folds)}</section>
<section id="data-quality"><h2>Data quality</h2>{quality}</section>
{report.live_record_section(live)}
<script>{report._CHECK_SCRIPT}</script>
</body></html>
"""
