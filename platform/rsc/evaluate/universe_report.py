"""report.html of a policy trained across a universe: verdict, statistics on the pooled returns, the
aggregate and each symbol's figures, and each symbol's equity against buy-and-hold."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt

from rsc.evaluate import report
from rsc.evaluate.suite import BUY_AND_HOLD, POLICY
from rsc.evaluate.universe import UniverseEvaluation


def equity_figure(ev: UniverseEvaluation) -> str:
    """Small multiples: the policy against buy-and-hold on each symbol's test period."""
    columns = min(3, len(ev.symbols))
    rows = -(-len(ev.symbols) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(11, 2.8 * rows), squeeze=False)
    for axis, (symbol, one) in zip(axes.ravel(), ev.evaluations.items(), strict=False):
        for name in (BUY_AND_HOLD, POLICY):
            axis.plot(one.timestamps, one.backtests[name].equity, color=report.COLOURS[name],
                      lw=1.8 if name == POLICY else 1.0, label=report.LABELS[name])  # fmt: skip
        axis.set_title(symbol, fontsize=10)
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(ev.symbols) :]:
        axis.set_visible(False)
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return report._png(figure)


def _per_symbol_table(ev: UniverseEvaluation) -> str:
    rows = []
    for symbol, figures in ev.universe["symbols"].items():
        policy, hold = figures[POLICY], figures[BUY_AND_HOLD]
        rows.append(
            [
                html.escape(symbol),
                report._num(policy["sharpe"]),
                report._num(hold["sharpe"]),
                report._pct(policy["total_return"]),
                report._pct(hold["total_return"]),
                report._pct(policy["max_drawdown"]),
                "yes" if policy["sharpe"] > hold["sharpe"] else "no",
            ]
        )
    sharpe = ev.universe["policy_sharpe"]
    rows.append(
        [
            "<b>aggregate</b>",
            f"median {report._num(sharpe['median'])}, mean {report._num(sharpe['mean'])}, worst "
            f"{report._num(sharpe['worst'])}",
            "",
            "",
            "",
            "",
            f"{ev.universe['share_beating_buy_and_hold']:.0%} of symbols",
        ]
    )
    header = ["symbol", "policy Sharpe", "buy & hold Sharpe", "policy return", "buy & hold return",
              "policy max DD", "beats buy & hold"]  # fmt: skip
    return report._table(header, rows, "metrics")


def render_universe_report(ev: UniverseEvaluation, live: Mapping[str, Any] | None = None) -> str:
    """The whole page as one HTML string."""
    meta = (
        f"One policy on {len(ev.symbols)} symbols ({html.escape(', '.join(ev.symbols))}), each over its own "
        "test period, with the single-asset evaluation's costs, fills and benchmarks. The metrics table "
        "gives each figure's median over the symbols."
    )
    image = equity_figure(ev)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(ev.title)}</title>
<style>{report._STYLE}</style></head>
<body><h1>{html.escape(ev.title)}</h1><p class="meta">{meta}</p>
<section id="verdict"><h2>Verdict</h2><p class="verdict">{html.escape(ev.verdict)}</p></section>
<section id="statistics"><h2>Honest statistics (pooled returns)</h2>{report._statistics_table(ev)}</section>
<section id="universe"><h2>Per symbol</h2>{_per_symbol_table(ev)}</section>
<section id="metrics"><h2>Metrics (median over the symbols)</h2>{report._metrics_table(ev.metrics)}</section>
<section id="figures"><h2>Figures</h2><figure><img class="figure" id="fig-equity" data-figure="equity"
alt="Equity per symbol" src="data:image/png;base64,{image}"/><figcaption>Equity per symbol: policy against
buy-and-hold</figcaption></figure></section>
<section id="folds"><h2>Walk-forward folds</h2>{report._folds_table(ev.folds)}</section>
{report.live_record_section(live)}
<script>{report._CHECK_SCRIPT}</script>
</body></html>
"""
