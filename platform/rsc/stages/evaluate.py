"""evaluate: the exported policy trades the test part greedily, against every benchmark through the same
backtester -> metrics.json (all figures, PSR/DSR/PBO, verdict) + report.html + Datadog gauges."""

from __future__ import annotations

import dataclasses
import io
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsc.config import Settings
from rsc.config.settings import EnvSettings
from rsc.core.artifacts import Scaler
from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, SYMBOL, TEST, TIMESTAMP
from rsc.env import MarketArrays, PanelArrays, PortfolioEnv, TradingEnv
from rsc.evaluate import search, suite
from rsc.evaluate.backtest import backtest_policy
from rsc.evaluate.portfolio import backtest_portfolio_policy, evaluate_portfolio
from rsc.evaluate.portfolio_report import render_portfolio_report
from rsc.evaluate.report import render_report
from rsc.evaluate.universe import evaluate_universe
from rsc.evaluate.universe_report import render_universe_report
from rsc.monitor import Metric, MetricsSink, names, sink_from_settings
from rsc.registry.policy import Policy
from rsc.registry.promotion import champion_live_record
from rsc.registry.tracking import use_registry
from rsc.stages.holdout import evaluate_holdout
from rsc.storage import Storage
from rsc.storage.layout import RunLayout, read_scaler, read_search

log = logging.getLogger(__name__)

TRIAL_SHARPE = "eval/sharpe"


@dataclass(frozen=True)
class EvaluateResult:
    metrics_uri: str
    report_uri: str
    metrics: dict[str, dict[str, float]]  # strategy -> figure (numbers only, for KFP's metrics)


def load_trials(storage: Storage, run_root: str, min_correlation: float = 0.5) -> suite.TrialsEvidence:
    """What the search left for the DSR (its tries, the Sharpe ratios it compared) and PBO (returns).

    With ``tune/search.json`` and every checkpoint's validation returns, the DSR's N is the effective
    number of independent tries (:mod:`rsc.evaluate.search`) and PBO runs over every checkpoint; a run
    root from before them is read as it was: one try per Tune trial, each trial's last returns.
    """
    layout = RunLayout(run_root)
    if not (storage.exists(layout.search) and storage.exists(layout.checkpoint_returns)):
        return _trials_as_recorded(storage, layout)
    record = read_search(storage, layout.search)
    if not record.tune_trials:  # no search this time: whatever an earlier one left does not count
        return _trials_as_recorded(storage, layout)
    frame = thin_checkpoints(
        pd.read_parquet(io.BytesIO(storage.read_bytes(layout.checkpoint_returns))).dropna()
    )
    try:
        found = search.effective_trials(frame.to_numpy(np.float64), min_correlation)
    except ValueError as error:
        note = f"not available: the checkpoints' validation returns cannot be clustered: {error}"
        legacy = _trials_as_recorded(storage, layout)
        return legacy._replace(n_trials=None, missing={**legacy.missing, "dsr": note})
    return suite.TrialsEvidence(
        n_trials=found.n,
        sharpes=np.array(list(record.compared_sharpes.values()), dtype=np.float64),
        returns=frame.to_numpy(np.float64),
        raw_count=record.raw_count,
        breakdown=record.breakdown(),
        clustered=found.series,
        min_correlation=min_correlation,
    )


MAX_SERIES = 512  # clustering is [M, M] and PBO [C(16, 8), M]: a big search keeps this many series


def thin_checkpoints(frame: pd.DataFrame, limit: int = MAX_SERIES) -> pd.DataFrame:
    """At most ``limit`` columns, each trial's checkpoints (``<trial>/iter-<k>``) thinned evenly.

    A trial's checkpoints are its most alike series, so dropping every other one barely moves the
    cluster count, while a search of thousands of checkpoints would need gigabytes to cluster."""
    if frame.shape[1] <= limit:
        return frame
    trials = pd.Series(frame.columns).str.rsplit("/", n=1).str[0]
    per_trial = max(1, limit // trials.nunique())
    keep = []
    for _, columns in pd.Series(frame.columns).groupby(trials.to_numpy(), sort=False):
        picks = np.unique(np.linspace(0, len(columns) - 1, min(per_trial, len(columns))).round().astype(int))
        keep += list(columns.iloc[picks])
    return frame[keep]


def _trials_as_recorded(storage: Storage, layout: RunLayout) -> suite.TrialsEvidence:
    """Trial count, Sharpe ratios and return series from the trials table alone (older run roots)."""
    trials_uri, returns_uri = layout.trials, layout.trial_returns
    n_trials = sharpes = returns = None
    missing: dict[str, str] = {}
    if storage.exists(trials_uri):
        trials = pd.read_parquet(io.BytesIO(storage.read_bytes(trials_uri)))
        n_trials = len(trials)
        column = trials[TRIAL_SHARPE] if TRIAL_SHARPE in trials.columns else pd.Series(dtype=float)
        sharpes = pd.to_numeric(column, errors="coerce").dropna().to_numpy(np.float64)
    else:
        missing["dsr"] = (
            "not available for this run: no hyperparameter search was recorded "
            "(tune/trials.parquet is absent)"
        )
    if storage.exists(returns_uri):
        returns = pd.read_parquet(io.BytesIO(storage.read_bytes(returns_uri))).to_numpy(np.float64)
    else:
        missing["pbo"] = (
            "not available for this run: PBO needs each HPO trial's return series "
            "(tune/trial_returns.parquet, one column per trial), and this run stored only each trial's "
            "summary metrics"
        )
    return suite.TrialsEvidence(n_trials, sharpes, returns, missing, raw_count=n_trials)


def load_folds(storage: Storage, run_root: str, metric: str = "eval/sharpe") -> list[dict] | None:
    """The walk-forward fold table, if selection ran: per fold its dates, rows and the chosen candidate's
    validation figures, then every candidate's ``metric`` (``candidate <n> <metric>``, the chosen one
    marked)."""
    uri = RunLayout(run_root).walk_forward
    if not storage.exists(uri):
        return None
    per_fold = pd.read_parquet(io.BytesIO(storage.read_bytes(uri)))
    chosen = per_fold[per_fold["chosen"]].sort_values("fold")
    table = []
    for row in chosen.to_dict(orient="records"):
        entry: dict = {}
        if "train_start" in row:  # a run from before the table carried training windows has none
            entry["train"] = f"{row['train_start'][:10]} .. {row['train_end'][:10]}"
            entry["rows (train / validation)"] = f"{row['train_rows']} / {row['validation_rows']}"
        entry["validation"] = f"{row['validation_start'][:10]} .. {row['validation_end'][:10]}"
        entry.update(
            (k, v)
            for k, v in row.items()
            if k not in ("chosen", "candidate", "fold", "score", "train_rows", "validation_rows")
            and not k.startswith(("train_", "validation_"))
        )
        if metric in per_fold.columns:
            same_fold = per_fold[per_fold["fold"] == row["fold"]].sort_values("candidate")
            for other in same_fold.to_dict(orient="records"):
                mark = " (chosen)" if other["chosen"] else ""
                entry[f"candidate {other['candidate']}{mark} {metric}"] = float(other[metric])
        table.append(entry)
    return table


def _history(frame: pd.DataFrame, until: np.datetime64) -> suite.PriceHistory:
    rows = frame[frame[TIMESTAMP] <= until].sort_values(TIMESTAMP)
    return suite.PriceHistory(
        rows[TIMESTAMP].to_numpy(),
        *(rows[name].to_numpy(np.float64) for name in (OPEN, CLOSE, HIGH, LOW)),
    )


def send_metrics(sink: MetricsSink, results: Mapping, symbol: str) -> int:
    """Every strategy figure and every available statistic as a gauge; returns how many were sent."""
    sent = 0
    for strategy, values in suite.strategy_metrics(results).items():
        for key, value in values.items():
            sink.send(
                Metric(names.eval_metric(key), value, "gauge", {"strategy": strategy, "symbol": symbol})
            )
            sent += 1
    for key, value in results["statistics"].items():
        if isinstance(value, int | float):
            sink.send(
                Metric(names.eval_metric(key), value, "gauge", {"strategy": suite.POLICY, "symbol": symbol})
            )
            sent += 1
    return sent


def _quality_warnings(storage: Storage, run_root: str) -> tuple[str, ...]:
    """The ingest's data-quality warnings (none for a run root from before they were recorded)."""
    uri = RunLayout(run_root).quality
    if not storage.exists(uri):
        return ()
    recorded = storage.read_json(uri)
    found = tuple(w["finding"] for w in recorded["warnings"])
    if recorded.get("close_only"):
        found += (
            f"{', '.join(recorded['close_only'])}: close-only bars (open, high and low are the close, no "
            "volume): filled at the next close, without a range-based spread, stops or range and volume "
            "indicators",
        )
    return found


def run(
    cfg: Settings,
    split_uri: str,
    scaler_uri: str,
    model_uri: str,
    folds: Sequence[Mapping[str, Any]] | None = None,
    sink: MetricsSink | None = None,
) -> EvaluateResult:
    storage = Storage.from_settings(cfg.storage)
    frame = storage.read_dataset(split_uri)
    with tempfile.TemporaryDirectory() as tmp:
        policy = Policy.load(storage.download_dir(model_uri, tmp))
    if policy.portfolio is not None:
        return _run_portfolio(cfg, storage, split_uri, frame, scaler_uri, policy, folds, sink)
    env = EnvSettings.model_validate(policy.spec.env) if policy.spec.env else cfg.env  # as trained
    scaler = read_scaler(storage, scaler_uri)
    trials = load_trials(storage, cfg.run_root, cfg.evaluate.trial_correlation)
    folds = folds if folds is not None else load_folds(storage, cfg.run_root, cfg.tune.selection.metric)
    if policy.universe is not None:
        return _run_universe(cfg, storage, split_uri, frame, scaler, env, policy, trials, folds, sink)
    symbol = cfg.data.symbols[0]
    own = _rows_of(frame, symbol, split_uri)
    evaluation = _evaluate_symbol(cfg, own, scaler, env, policy, symbol, trials, frame, folds)
    evaluation = dataclasses.replace(
        evaluation,
        data_quality=_quality_warnings(storage, cfg.run_root),
        holdout=evaluate_holdout(cfg, storage, own, scaler, env, policy, evaluation.periods_per_year),
    )
    results = evaluation.to_json()

    metrics_uri, report_uri = RunLayout(cfg.run_root).metrics, RunLayout(cfg.run_root).report
    storage.write_json(metrics_uri, results)
    storage.write_bytes(report_uri, render_report(evaluation, champion_live(cfg)).encode())
    sink = sink or sink_from_settings(cfg.monitor, "rsc-evaluate")
    send_metrics(sink, results, symbol)
    log.info("evaluate: %s", evaluation.verdict)
    return EvaluateResult(metrics_uri, report_uri, evaluation.metrics)


def champion_live(cfg: Settings) -> dict[str, Any] | None:
    """The lineage's champion's paper record beside its backtest, for the report (None when there is no
    registry yet, no champion, no record, or the registry cannot be reached: the report says so)."""
    uri = cfg.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no registry yet: nothing was ever registered or traded
    try:
        use_registry(uri)
        return champion_live_record(cfg.model_name)
    except Exception as error:  # the report is written either way
        log.warning("evaluate: no champion paper record for the report: %s", error)
        return None


def _rows_of(frame: pd.DataFrame, symbol: str, split_uri: str) -> pd.DataFrame:
    own = frame[frame[SYMBOL] == symbol] if SYMBOL in frame.columns else frame
    if own.empty:
        raise ValueError(f"{split_uri}: no rows of symbol {symbol!r}")
    return own


def _evaluate_symbol(
    cfg: Settings,
    own: pd.DataFrame,
    scaler: Scaler,
    env: EnvSettings,
    policy: Policy,
    symbol: str,
    trials: suite.TrialsEvidence,
    frame: pd.DataFrame | None,
    folds: Sequence[Mapping[str, Any]] | None,
) -> suite.Evaluation:
    """One symbol's test part traded by the policy, with every single-asset benchmark.

    Args:
        frame: every symbol's rows, for the equal-weight and minimum-variance benchmarks (None: none).
    """
    market = MarketArrays.from_frame(own, scaler, TEST, env.window)
    policy_env = TradingEnv(market, env, mode="eval")
    policy_run = backtest_policy(policy_env, policy.actor(symbol if policy.universe else None))
    last = policy_run.timestamps[-1]
    return suite.evaluate(
        policy_run,
        _history(own, last),
        symbol,
        env.positions,
        policy_env.costs,
        env.initial_cash,
        cfg.evaluate,
        cfg.run.seed,
        trials,
        suite.asset_prices(frame, cfg.data.symbols, last)
        if frame is not None and SYMBOL in frame.columns
        else None,
        folds,
        title=f"rsc evaluation: {cfg.run.label}",
        fill=env.fill,
    )


def _run_universe(
    cfg: Settings,
    storage: Storage,
    split_uri: str,
    frame: pd.DataFrame,
    scaler: Scaler,
    env: EnvSettings,
    policy: Policy,
    trials: suite.TrialsEvidence,
    folds: Sequence[Mapping[str, Any]] | None,
    sink: MetricsSink | None,
) -> EvaluateResult:
    """A policy trained across a universe: every symbol's own evaluation, then the aggregate."""
    evaluations = {
        symbol: _evaluate_symbol(
            cfg, _rows_of(frame, symbol, split_uri), scaler, env, policy, symbol, trials, None, None
        )
        for symbol in policy.universe.symbols
    }
    evaluation = evaluate_universe(
        evaluations, cfg.evaluate, trials, title=f"rsc evaluation: {cfg.run.label}"
    )
    notes = dict(evaluation.notes)
    if cfg.split.holdout_bars:
        notes["holdout"] = (
            "the final holdout is evaluated for single-symbol policies only; not for a universe"
        )
    evaluation = dataclasses.replace(
        evaluation,
        notes=notes,
        folds=[dict(f) for f in folds] if folds else None,
        data_quality=_quality_warnings(storage, cfg.run_root),
    )
    results = evaluation.to_json()
    layout = RunLayout(cfg.run_root)
    storage.write_json(layout.metrics, results)
    storage.write_bytes(layout.report, render_universe_report(evaluation, champion_live(cfg)).encode())
    send_metrics(sink or sink_from_settings(cfg.monitor, "rsc-evaluate"), results, "universe")
    log.info("evaluate: %s", evaluation.verdict)
    return EvaluateResult(layout.metrics, layout.report, evaluation.metrics)


def _run_portfolio(
    cfg: Settings,
    storage: Storage,
    split_uri: str,
    frame: pd.DataFrame,
    scaler_uri: str,
    policy: Policy,
    folds: Sequence[Mapping[str, Any]] | None,
    sink: MetricsSink | None,
) -> EvaluateResult:
    """A portfolio policy: its weights over the test part against the allocation benchmarks."""
    env = EnvSettings.model_validate(policy.spec.env)
    market = PanelArrays.from_frame(frame, read_scaler(storage, scaler_uri), TEST, env.window)
    if market.symbols != policy.portfolio.symbols:
        raise ValueError(
            f"{split_uri} holds {list(market.symbols)}, "
            f"the policy allocates across {list(policy.portfolio.symbols)}"
        )
    policy_env = PortfolioEnv(market, env, mode="eval")
    policy_run = backtest_portfolio_policy(policy_env, policy.actor())
    start = int(np.searchsorted(market.timestamps, policy_run.timestamps[0]))
    window = slice(start, start + len(policy_run.timestamps))
    closes = frame.pivot(index=TIMESTAMP, columns=SYMBOL, values=CLOSE).sort_index()[list(market.symbols)]
    history = closes[closes.index <= policy_run.timestamps[-1]].dropna().to_numpy(np.float64)
    evaluation = evaluate_portfolio(
        policy_run,
        history,
        market.symbols,
        policy_env.costs,
        env.initial_cash,
        cfg.evaluate,
        load_trials(storage, cfg.run_root, cfg.evaluate.trial_correlation),
        high=market.high[window],
        low=market.low[window],
        tradable=None if market.tradable is None else market.tradable[window],
        max_leverage=env.max_leverage,
        title=f"rsc evaluation: {cfg.run.label}",
        alignment=storage.read_manifest(split_uri).get("alignment"),
        folds=folds if folds is not None else load_folds(storage, cfg.run_root, cfg.tune.selection.metric),
    )
    notes = dict(evaluation.notes)
    if cfg.split.holdout_bars:
        notes["holdout"] = (
            "the final holdout is evaluated for single-asset policies only; not for this portfolio"
        )
    evaluation = dataclasses.replace(
        evaluation, notes=notes, data_quality=_quality_warnings(storage, cfg.run_root)
    )
    results = evaluation.to_json()
    layout = RunLayout(cfg.run_root)
    storage.write_json(layout.metrics, results)
    storage.write_bytes(layout.report, render_portfolio_report(evaluation, champion_live(cfg)).encode())
    send_metrics(sink or sink_from_settings(cfg.monitor, "rsc-evaluate"), results, "portfolio")
    log.info("evaluate: %s", evaluation.verdict)
    return EvaluateResult(layout.metrics, layout.report, evaluation.metrics)
