"""One self-contained HTML page for an :class:`~rsc.evaluate.suite.Evaluation`: figures are embedded
as base64 PNG, so the file can be mailed, logged to MLflow or opened offline.

Every figure is an ``<img class="figure" data-figure=NAME>``. A small inline script marks each one,
once the page has loaded, with its decoded size and position (``data-natural-width``, ``data-rect``)
and shows a warning in place of any figure that did not decode; tests read those marks from the DOM.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rsc.core import metrics
from rsc.evaluate.suite import BUY_AND_HOLD, POLICY, Evaluation
from rsc.evaluate.verdict import holdout_line

LABELS = {
    POLICY: "policy",
    BUY_AND_HOLD: "buy & hold",
    "flat": "flat",
    "sma_crossover": "SMA crossover",
    "momentum": "TS momentum",
    "random_median": "random (median)",
    "equal_weight": "equal weight",
    "min_variance": "min variance",
}
COLOURS = {
    POLICY: "#d62728",
    BUY_AND_HOLD: "#1f77b4",
    "flat": "#7f7f7f",
    "sma_crossover": "#2ca02c",
    "momentum": "#9467bd",
    "equal_weight": "#8c564b",
    "min_variance": "#e377c2",
}
MAX_TRADES_SHOWN = 500


def _pct(value: float) -> str:
    return f"{round(value, 4) + 0.0:.2%}"  # + 0.0: a rounding to zero prints as 0.00%, not -0.00%


def _num(value: float) -> str:
    return f"{round(value, 3) + 0.0:.3f}"


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _stamp(value) -> str:
    """A bar time as text: the date alone for daily bars (midnight), else date and time."""
    text = str(np.datetime64(value, "s")).replace("T", " ")
    return text.removesuffix(" 00:00:00")


# (key, label, format) of the metrics table, in reading order.
METRIC_ROWS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("total_return", "total return", _pct),
    ("cagr", "CAGR", _pct),
    ("annual_volatility", "annualised volatility", _pct),
    ("sharpe", "Sharpe ratio", _num),
    ("sortino", "Sortino ratio", _num),
    ("calmar", "Calmar ratio", _num),
    ("max_drawdown", "max drawdown", _pct),
    ("max_drawdown_duration", "max drawdown duration (bars)", _int),
    ("var_95", "VaR 95% (one bar)", _pct),
    ("cvar_95", "CVaR 95% (one bar)", _pct),
    ("skew", "skew", _num),
    ("kurtosis", "excess kurtosis", _num),
    ("trades", "trades (round trips)", _int),
    ("win_rate", "win rate", _pct),
    ("profit_factor", "profit factor", _num),
    ("average_win", "average win (trade return)", _pct),
    ("average_loss", "average loss (trade return)", _pct),
    ("turnover", "turnover (x equity per year)", _num),
    ("exposure", "exposure (share of bars)", _pct),
    ("costs", "costs paid", _money),
    ("alpha", "alpha vs buy & hold (annualised)", _pct),
    ("beta", "beta vs buy & hold", _num),
    ("information_ratio", "information ratio vs buy & hold", _num),
    ("bars", "returns (bars)", _int),
)


# -- figures ----------------------------------------------------------------------------------------
def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _axes(title: str, ylabel: str, height: float = 4.0):
    figure, axis = plt.subplots(figsize=(11, height))
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    return figure, axis


def equity_figure(ev: Evaluation) -> str:
    figure, axis = _axes("Equity: policy against every benchmark (same capital, costs and fills)", "equity")
    stamps = ev.timestamps
    low, mid, high = np.quantile(ev.random.equity, [0.05, 0.5, 0.95], axis=0)
    axis.fill_between(stamps, low, high, color="#bbbbbb", alpha=0.5, label="random: 5-95% of seeds")
    axis.plot(stamps, mid, color="#888888", lw=1, ls="--", label="random: median")
    for name, result in ev.backtests.items():
        if name != POLICY:
            axis.plot(stamps, result.equity, color=COLOURS[name], lw=1.2, label=LABELS[name])
    for name, run in ev.multi_asset.items():
        axis.plot(ev.multi_asset_timestamps, run.equity, color=COLOURS[name], lw=1.2, label=LABELS[name])
    axis.plot(stamps, ev.backtests[POLICY].equity, color=COLOURS[POLICY], lw=2.2, label=LABELS[POLICY])
    axis.legend(loc="upper left", fontsize=8, ncol=3)
    return _png(figure)


def drawdown_figure(ev: Evaluation) -> str:
    figure, axis = _axes("Drawdown below the running peak", "drawdown", 3.2)
    for name in (BUY_AND_HOLD, POLICY):
        dd = metrics.drawdowns(ev.backtests[name].equity)
        axis.fill_between(ev.timestamps, -dd, 0, color=COLOURS[name], alpha=0.35, label=LABELS[name])
    axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axis.legend(loc="lower left", fontsize=8)
    return _png(figure)


def positions_figure(ev: Evaluation) -> str:
    policy = ev.backtests[POLICY]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.set_title(f"Policy positions over the {ev.symbol} price (fills at the next open)")
    top.plot(ev.timestamps, ev.price, color="#333333", lw=1, label="close")
    trades = policy.trades
    for side, colour in ((1, "#2ca02c"), (-1, "#d62728")):
        held = np.sign(policy.units) == side
        top.fill_between(
            ev.timestamps,
            ev.price.min(),
            ev.price.max(),
            where=held,
            color=colour,
            alpha=0.12,
            step="pre",
            label="long" if side > 0 else "short",
        )
    top.scatter(
        ev.timestamps[trades.entry], trades.entry_price, marker="^", color="#2ca02c", s=25, label="entry"
    )
    closed = trades.closed
    top.scatter(
        ev.timestamps[trades.exit[closed]],
        trades.exit_price[closed],
        marker="v",
        color="#d62728",
        s=25,
        label="exit",
    )
    top.set_ylabel("price")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8, ncol=5)
    bottom.step(ev.timestamps, policy.weights, where="post", color=COLOURS[POLICY], lw=1)
    bottom.set_ylabel("weight")
    bottom.grid(alpha=0.3)
    return _png(figure)


def rolling_window(periods_per_year: float, min_periods: int) -> int:
    """Bars in the rolling-Sharpe window: about a quarter of a year, never below the minimum sample."""
    return max(min_periods, round(periods_per_year / 4))


def rolling_sharpe_figure(ev: Evaluation) -> str:
    window = rolling_window(ev.periods_per_year, ev.settings.min_periods)
    figure, axis = _axes(f"Rolling Sharpe ratio ({window}-bar window, annualised)", "Sharpe", 3.2)
    for name in (BUY_AND_HOLD, POLICY):
        values = metrics.rolling_sharpe(
            ev.backtests[name].equity, window, ev.periods_per_year, ev.settings.risk_free_rate
        )
        axis.plot(ev.timestamps, values, color=COLOURS[name], lw=1.4, label=LABELS[name])
    axis.axhline(0, color="black", lw=0.8)
    axis.set_xlim(ev.timestamps[0], ev.timestamps[-1])
    axis.legend(loc="upper left", fontsize=8)
    return _png(figure)


def random_figure(ev: Evaluation) -> str:
    figure, axis = _axes(
        f"Sharpe ratios of {len(ev.random.seeds)} random strategies against the policy", "seeds", 3.2
    )
    axis.hist([m["sharpe"] for m in ev.random.metrics], bins=30, color="#bbbbbb", edgecolor="#888888")
    for name in (POLICY, BUY_AND_HOLD):
        axis.axvline(ev.metrics[name]["sharpe"], color=COLOURS[name], lw=2, label=LABELS[name])
    axis.set_xlabel("annualised Sharpe ratio")
    axis.legend(fontsize=8)
    return _png(figure)


def pbo_figure(ev: Evaluation) -> str:
    figure, axis = _axes("CSCV: logit of the in-sample best's out-of-sample rank", "splits", 3.2)
    axis.hist(ev.pbo.logits, bins=30, color="#9467bd", alpha=0.7)
    axis.axvline(0, color="black", lw=1)
    axis.set_xlabel("logit (<= 0: no better than the out-of-sample median)")
    return _png(figure)


FIGURES: tuple[tuple[str, str, Callable[[Evaluation], str]], ...] = (
    ("equity", "Equity curves against the benchmarks", equity_figure),
    ("drawdown", "Drawdown", drawdown_figure),
    ("positions", "Positions over price", positions_figure),
    ("rolling_sharpe", "Rolling Sharpe ratio", rolling_sharpe_figure),
    ("random", "The policy against random strategies", random_figure),
)


def figures(ev: Evaluation) -> dict[str, tuple[str, str]]:
    """Name -> (caption, base64 PNG) of every figure this evaluation has."""
    out = {name: (caption, draw(ev)) for name, caption, draw in FIGURES}
    if ev.pbo is not None:
        out["pbo"] = ("Probability of backtest overfitting (CSCV)", pbo_figure(ev))
    return out


# -- HTML -------------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _metrics_table(results: Mapping[str, Mapping[str, float]]) -> str:
    names = [n for n in LABELS if n in results]
    rows = [
        [html.escape(label)] + [fmt(results[n][key]) if key in results[n] else "&mdash;" for n in names]
        for key, label, fmt in METRIC_ROWS
    ]
    return _table(["metric", *(LABELS[n] for n in names)], rows, "metrics")


def _statistic(ev: Evaluation, key: str, label: str, what: str) -> list[str]:
    """A row: the name, the value (or "n/a"), what it measures (and why it is not available)."""
    value = ev.statistics[key]
    if value is not None:
        return [label, f"{value:.1%}", what]
    reason = html.escape(ev.notes.get(key, "not available"))
    return [label, '<span class="missing">n/a</span>', f'{what}. <span class="missing">{reason}</span>']


SEARCH_PARTS = (
    ("tune_checkpoints", "{tune_checkpoints} checkpoints of {tune_trials} Tune trials"),
    (
        "walk_forward_checkpoints",
        "{walk_forward_checkpoints} of {walk_forward_candidates} walk-forward "
        "candidates on {walk_forward_folds} folds",
    ),
    ("final_training_checkpoints", "{final_training_checkpoints} of the final training"),
)


def _search_text(search: Mapping[str, Any]) -> str:
    """Where the tries came from and how N was derived from them, for the DSR's row."""
    if not search:
        return ""
    parts = [text.format(**search) for key, text in SEARCH_PARTS if search.get(key)]
    text = f". Tries looked at on validation data: {search['raw_count']} ({', '.join(parts) or 'none'})"
    if search.get("clustered_series"):
        text += (
            f"; N = {search['effective_trials']}: the {search['clustered_series']} Tune checkpoints' "
            f"validation returns clustered where correlated at {search['min_correlation']:g} or more "
            "(re-trainings of a configuration already counted add tries, not independent trials)"
        )
    return text


def _statistics_table(ev: Evaluation) -> str:
    s = ev.statistics
    n = s["n_trials"]
    trials = "the trials" if n is None else f"{n} independent trial{'s' if n != 1 else ''}"
    dsr = f"PSR against the best Sharpe ratio expected from {trials} with no skill"
    if s["expected_max_sharpe"] is not None:
        dsr += (
            f" (annualised {s['expected_max_sharpe']:.2f}; variance of the Sharpe ratios the selection "
            f"compared {s['trials_sharpe_variance']:.3f})"
        )
    dsr += _search_text(ev.search)
    pbo = "CSCV over the tries' validation returns on one window"
    if s["pbo"] is not None:
        pbo += (
            f" ({s['pbo_splits']} blocks; the in-sample best lost money out of sample in "
            f"{s['pbo_probability_of_loss']:.0%} of splits)"
        )
    psr = f"P(true Sharpe &gt; 0) from {s['n_returns']} returns, their skew and kurtosis"
    rows = [
        _statistic(ev, "psr", "Probabilistic Sharpe Ratio (PSR)", psr),
        _statistic(ev, "dsr", "Deflated Sharpe Ratio (DSR)", dsr),
        _statistic(ev, "pbo", "Probability of Backtest Overfitting (PBO)", pbo),
    ]
    return _table(["statistic", "value", "what it measures"], rows, "stats")


def _random_table(ev: Evaluation) -> str:
    labels = {"sharpe": ("Sharpe ratio", _num), "total_return": ("total return", _pct)}
    labels["max_drawdown"] = ("max drawdown", _pct)
    rows = []
    for key, (label, fmt) in labels.items():
        d = ev.random_distribution[key]
        rows.append(
            [
                label,
                fmt(ev.metrics[POLICY][key]),
                fmt(d["p05"]),
                fmt(d["p50"]),
                fmt(d["p95"]),
                _pct(d["share_below_policy"]),
            ]
        )
    header = ["figure", "policy", "random 5%", "random median", "random 95%", "seeds below the policy"]
    return _table(header, rows, "random")


def _folds_table(folds: Sequence[Mapping[str, float]] | None) -> str:
    if not folds:
        return '<p class="missing">No walk-forward folds in this run.</p>'
    keys = list(dict.fromkeys(k for fold in folds for k in fold))
    rows = [
        [str(i + 1)]
        + [
            (f"{fold[k]:.4g}" if isinstance(fold.get(k), int | float) else html.escape(str(fold.get(k, ""))))
            for k in keys
        ]
        for i, fold in enumerate(folds)
    ]
    return _table(["fold", *keys], rows, "folds")


def _trades_table(ev: Evaluation) -> str:
    trades, stamps = ev.backtests[POLICY].trades, ev.timestamps
    if len(trades.pnl) == 0:
        return '<p class="missing">The policy made no trades.</p>'
    rows = []
    for i in range(min(len(trades.pnl), MAX_TRADES_SHOWN)):
        rows.append(
            [
                str(i + 1),
                "long" if trades.side[i] > 0 else "short",
                _stamp(stamps[trades.entry[i]]),
                _money(trades.entry_price[i]),
                _stamp(stamps[trades.exit[i]]) + ("" if trades.closed[i] else " (open)"),
                _money(trades.exit_price[i]),
                str(int(trades.exit[i] - trades.entry[i])),
                _money(trades.pnl[i]),
                _pct(trades.ret[i]),
            ]
        )
    more = len(trades.pnl) - MAX_TRADES_SHOWN
    tail = f'<p class="missing">{more} more trades not shown.</p>' if more > 0 else ""
    header = [
        "#",
        "side",
        "entry (fill)",
        "entry price",
        "exit (fill)",
        "exit price",
        "bars",
        "PnL",
        "return",
    ]
    return _table(header, rows, "trades") + tail


def _conventions(ev: Evaluation) -> str:
    items = [
        f"Annualisation: {ev.annualisation.description}; means scale by the bars per year, volatilities "
        "by its square root.",
        f"Risk-free rate {ev.settings.risk_free_rate:.2%} a year, subtracted per bar for Sharpe, Sortino "
        "and alpha.",
        "Returns are simple returns of equity marked at each close; standard deviations use ddof=1.",
        "Sortino uses the standard downside deviation: sqrt(mean(min(0, r - rf)^2)) over all returns.",
        "Drawdowns are positive fractions below the running peak; durations are in bars.",
        "Win rate is the fraction of round-trip trades with positive PnL, costs included.",
        "VaR and CVaR are historical, one bar, at 95%, as positive losses.",
        f"Annualised figures need at least {ev.settings.min_periods} returns (else 0.0); a ratio with a zero "
        "denominator is 0.0.",
        "Every strategy runs through the same backtester as the policy: a decision at a bar's close fills at "
        f"the next bar's open, with {ev.costs.commission_bps:g} bps commission and {ev.costs.slippage_bps:g} "
        f"bps slippage on traded notional, from {ev.initial_cash:,.0f} of capital.",
        "The random benchmark draws each bar's position uniformly from the env's positions; its column is "
        f"the median over {len(ev.random.seeds)} seeds.",
    ]
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var broken = [];
  document.querySelectorAll("img.figure").forEach(function (img) {
    var r = img.getBoundingClientRect();
    img.dataset.naturalWidth = img.naturalWidth;
    img.dataset.rect = [r.left + scrollX, r.top + scrollY, r.width, r.height].map(Math.round).join(",");
    if (!img.complete || img.naturalWidth === 0) {
      broken.push(img.dataset.figure);
      var warning = document.createElement("p");
      warning.className = "broken";
      warning.textContent = "Figure '" + img.dataset.figure + "' could not be displayed.";
      img.insertAdjacentElement("afterend", warning);
    }
  });
  document.body.dataset.brokenFigures = broken.join(",");
  document.body.dataset.height = document.documentElement.scrollHeight;
});
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:76em;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:3px 9px;text-align:right}
td:first-child,th:first-child{text-align:left}
table.stats td:last-child,table.stats th:last-child{text-align:left}
.verdict{background:#f4f6fa;border-left:5px solid #1f77b4;padding:.8em 1.2em;font-size:1.05em}
.missing{color:#8a6d3b}
.broken{color:#b00;font-weight:bold}
figure{margin:1em 0}
img.figure{display:block;width:100%;max-width:1100px;min-height:40px}
.meta{color:#555}
"""


def _data_quality(ev: Evaluation) -> str:
    if not ev.data_quality:
        return "<p>No data-quality warnings for the ingested bars.</p>"
    items = "".join(f"<li>{html.escape(finding)}</li>" for finding in ev.data_quality)
    return f'<ul class="warnings">{items}</ul>'


def _holdout(ev: Evaluation) -> str:
    if not ev.holdout:
        return ""
    text = html.escape(holdout_line(ev.holdout))
    return f'<section id="holdout"><h2>Final holdout</h2><p>{text}</p></section>'


def live_record_section(live: Mapping[str, Any] | None) -> str:
    """The current champion's paper record beside the backtest it was promoted on (the decay watch's
    latest figures, stored with the version); says so when no champion has traded on paper yet."""
    if not live:
        body = "<p>No champion has a paper-trading record yet (the decay watch stores one as it trades).</p>"
    else:
        psr = live.get("psr")
        rows = [
            ["Sharpe (annualised)", _num(live["backtest_sharpe"]), _num(live["sharpe"])],
            ["maximum drawdown", _pct(live["backtest_max_drawdown"]), _pct(live["drawdown"])],
            ["bars", "test period", _int(live["bars"])],
        ]
        verdict = html.escape(live.get("alert") or "within what the backtest makes probable")
        body = (
            f"<p>Champion v{int(live['version'])}, latest {int(live['bars'])} paper bars up to "
            f"{html.escape(str(live.get('until') or '-'))}. PSR of the live record against the backtest "
            f"Sharpe: {'-' if psr is None else _num(psr)}: {verdict}.</p>"
            + _table(["", "backtest", "paper"], rows, "metrics")
        )
    return f'<section id="live-record"><h2>The champion on paper</h2>{body}</section>'


def render_report(ev: Evaluation, live: Mapping[str, Any] | None = None) -> str:
    """The whole page as one HTML string; ``live``: the champion's paper record (see
    :func:`live_record_section`)."""
    first, last = _stamp(ev.timestamps[0]), _stamp(ev.timestamps[-1])
    meta = (
        f"{html.escape(ev.symbol)}, {first} to {last}: {len(ev.timestamps) - 1} decisions. "
        f"{html.escape(ev.annualisation.description)}. "
        f"Costs {ev.costs.commission_bps:g} bps commission + {ev.costs.slippage_bps:g} bps slippage; "
        f"capital {ev.initial_cash:,.0f}."
    )
    images = "".join(
        f'<figure><img class="figure" id="fig-{name}" data-figure="{name}" alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}"/><figcaption>{html.escape(caption)}</figcaption></figure>'
        for name, (caption, data) in figures(ev).items()
    )
    assets = ", ".join(map(html.escape, ev.multi_asset_symbols))
    multi = (
        f"<p>Equal-weight and minimum-variance portfolios over {assets} rebalance every "
        f"{ev.settings.rebalance_every} bars.</p>"
        if ev.multi_asset
        else f'<p class="missing">{html.escape(ev.notes.get("multi_asset", ""))}.</p>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(ev.title)}</title>
<style>{_STYLE}</style></head>
<body><h1>{html.escape(ev.title)}</h1><p class="meta">{meta}</p>
<section id="verdict"><h2>Verdict</h2><p class="verdict">{html.escape(ev.verdict)}</p></section>
<section id="statistics"><h2>Honest statistics</h2>{_statistics_table(ev)}</section>
<section id="metrics"><h2>Metrics</h2>{_metrics_table(ev.metrics)}{multi}</section>
{_holdout(ev)}
<section id="figures"><h2>Figures</h2>{images}</section>
<section id="random"><h2>Against random strategies</h2>{_random_table(ev)}</section>
<section id="folds"><h2>Walk-forward folds</h2>{_folds_table(ev.folds)}</section>
<section id="trades"><h2>Trades</h2>{_trades_table(ev)}</section>
<section id="data-quality"><h2>Data quality</h2>{_data_quality(ev)}</section>
<section id="conventions"><h2>Conventions</h2>{_conventions(ev)}</section>
{live_record_section(live)}
<script>{_CHECK_SCRIPT}</script>
</body></html>
"""
