"""``rsc run``: the whole DAG through the KFP local runner, then a bounded paper-trading replay.

The terminal shows a line per stage with its elapsed time, the trial and iteration lines, and the
summary; everything else goes to ``<run root>/logs/`` (:mod:`rsc.launch.logs`). A failing stage
becomes one :class:`RunFailed` carrying its log's last lines and path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from rsc.cluster.local import local_head
from rsc.config import Settings
from rsc.core.schema import SYMBOL, TIMESTAMP
from rsc.evaluate.suite import strategy_metrics
from rsc.launch.logs import RUN_LOG, RunLogs, capture_run_output, step_logs
from rsc.launch.progress import ProgressView
from rsc.launch.runs import start_execution
from rsc.monitor import sink_from_settings
from rsc.paper.app import ReplaySummary, replay_run
from rsc.storage import Storage
from rsc.storage.layout import RunLayout
from rsc.system.processes import tail

log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """A stage of the run failed; the message names it and quotes the end of its log."""


@dataclass(frozen=True)
class RunSummary:
    metrics: dict[str, Any]
    deployment: dict  # the deploy step's result (rsc.launch.deploy.DeployResult)
    served_action: dict | None  # None: no champion to ask
    paper: ReplaySummary | None  # None: no champion to trade
    seconds: float
    logs: str
    settings: Settings  # the run's settings with its execution id (run_root is where it wrote)


def _served_action(url: str, cfg: Settings) -> dict:
    """One real request to the endpoint with the latest test window, for the summary."""
    import requests

    model = requests.get(f"{url}/v1/model", timeout=10).json()
    storage = Storage.from_settings(cfg.storage)
    bars = storage.read_dataset(RunLayout(cfg.run_root).bars)
    count = model["min_bars"] + 250

    def records(rows: pd.DataFrame) -> list[dict]:
        return json.loads(rows.drop(columns=[SYMBOL]).to_json(orient="records", date_format="iso"))

    if model.get("kind") == "portfolio":  # every symbol's latest bars, on the timestamps they share
        symbols = model["symbols"]
        rows = bars[bars[SYMBOL].isin(symbols)]
        shared = rows.groupby(TIMESTAMP)[SYMBOL].nunique()
        stamps = shared.index[shared.to_numpy() == len(symbols)][-count:]
        rows = rows[rows[TIMESTAMP].isin(stamps)].sort_values(TIMESTAMP)
        payload = {"assets": {s: records(rows[rows[SYMBOL] == s]) for s in symbols}}
    elif model.get("symbols"):  # a policy across a universe: the first symbol's bars, named
        symbol = model["symbols"][0]
        payload = {"bars": records(bars[bars[SYMBOL] == symbol].tail(count)), "symbol": symbol}
    else:
        payload = {"bars": records(bars.tail(count))}
    response = requests.post(f"{url}/v1/act", json=payload, timeout=30)
    response.raise_for_status()
    return response.json()


def _failure(view: ProgressView, logs: RunLogs, error: BaseException) -> RunFailed:
    """The failed stage (the last one reported failed, else the one still running) and its log's end."""
    view.sync()  # the events of the step that just failed may not have been read yet
    if view.failures:
        stage, message = view.failures[-1].stage, view.failures[-1].message
    elif view.started:
        stage, message = view.started[-1], f"{type(error).__name__}: {error}".splitlines()[0]
    else:
        stage, message = None, f"{type(error).__name__}: {error}".splitlines()[0]
    path = logs.stage_log(stage) if stage and logs.stage_log(stage).is_file() else logs.directory / RUN_LOG
    where = f"stage {stage} failed" if stage else "the run failed"
    return RunFailed(f"{where}: {message}\nfull log: {path}\n--- last lines ---\n{tail(path)}")


def _dag_and_replay(cfg: Settings, storage: Storage) -> tuple[dict, dict | None, ReplaySummary | None]:
    """The DAG through KFP's local runner, then (when there is a champion) one request and the replay."""
    from pipelines.local import run_locally  # kfp only when a run is asked for

    root = storage.local_path(RunLayout(cfg.run_root).kfp) or "/tmp/rsc-kfp"
    deployment = json.loads(run_locally(cfg.model_dump_json(), root))
    if deployment["model_version"] is None:  # no champion to ask or to trade
        return deployment, None, None
    with step_logs("paper", redirect=False):
        served = _served_action(deployment["url"], cfg)
        paper = replay_run(cfg, deployment["url"], sink_from_settings(cfg.monitor, "rsc-paper"))
    return deployment, served, paper


def execute(
    cfg: Settings, keep_serving: bool = False, console: Console | None = None, verbose: bool = False
) -> RunSummary:
    """Run the DAG (starting a local Ray head unless ``ray.address`` is set) and the paper replay."""
    console = console or Console(file=sys.stdout)  # pinned before the run's output is redirected
    started = time.monotonic()
    cfg = start_execution(cfg)
    storage = Storage.from_settings(cfg.storage)
    logs = RunLogs.for_run(storage, cfg.run_root)
    console.print(f"Logs: {logs.directory}/ (rerun with -v to see everything here)")
    try:
        with capture_run_output(logs, verbose), ProgressView(logs.events, console) as view:
            head = (
                local_head(dashboard_port=cfg.ray.dashboard_port, log_dir=logs.directory)
                if cfg.ray.address is None
                else contextlib.nullcontext(None)
            )
            with head as running:
                if running is not None:
                    cfg = cfg.model_copy(
                        update={"ray": cfg.ray.model_copy(update={"address": running.address})}
                    )
                    console.print(f"Ray head at {running.address}, dashboard {running.dashboard_url}")
                try:
                    deployment, served, paper = _dag_and_replay(cfg, storage)
                except Exception as error:
                    raise _failure(view, logs, error) from error
                metrics = storage.read_json(RunLayout(cfg.run_root).metrics)
                seconds = time.monotonic() - started
                summary = RunSummary(metrics, deployment, served, paper, seconds, logs.publish(storage), cfg)
                view.sync()
                print_summary(summary, cfg, console)
                if keep_serving and running is not None:
                    console.print(f"Serving at {deployment['url']}/v1/act; Ctrl-C to stop.")
                    with contextlib.suppress(KeyboardInterrupt):
                        while True:
                            time.sleep(3600)
    finally:
        logs.publish(storage)
    return summary


def print_summary(summary: RunSummary, cfg: Settings, console: Console) -> None:
    strategies = strategy_metrics(summary.metrics)
    portfolio = bool(summary.metrics.get("portfolio"))
    table = Table(title=f"Test period: policy vs benchmarks ({cfg.run.label})")
    columns = {  # metrics.json key -> (header, format); one row per strategy keeps it within 80 columns
        "total_return": ("return", "{:.2%}"),
        "sharpe": ("Sharpe", "{:.2f}"),
        "sortino": ("Sortino", "{:.2f}"),
        "max_drawdown": ("max DD", "{:.2%}"),
        # an allocation makes no round trips: its turnover (x equity a year) instead
        **({"turnover": ("turnover", "{:.1f}x")} if portfolio else {"trades": ("trades", "{:.0f}")}),
        "costs": ("costs", "{:,.0f}"),
    }
    table.add_column("strategy")
    for header, _ in columns.values():
        table.add_column(header, justify="right")
    for strategy, values in strategies.items():
        cells = (fmt.format(values.get(key, float("nan"))) for key, (_, fmt) in columns.items())
        table.add_row(f"[bold]{strategy}[/]" if strategy == "policy" else strategy, *cells)
    console.print(table)
    console.print(f"Verdict: {summary.metrics.get('verdict', '')}")
    deployment, paper = summary.deployment, summary.paper
    registered = deployment.get("registered_version")
    console.print(
        f"Registered model: [bold]{deployment['model_name']}[/] version {registered}; endpoint "
        f"{deployment['url']}/v1/act: {deployment['note']}"
    )
    if summary.served_action is not None:
        console.print(f"Served action for the latest bars: {summary.served_action}")
    if paper is not None:
        console.print(
            f"Paper trading: {paper.decisions} decisions, {paper.trades} trades, final equity "
            f"{paper.final_equity:,.2f} ({paper.outcome.stopped}); ledger {paper.ledger_uri}"
        )
    else:
        console.print("Paper trading: skipped, no champion to trade")
    console.print(
        f"Artifacts under {cfg.run_root}; MLflow at {cfg.tracking_uri}; logs in {summary.logs}; "
        f"took {summary.seconds:.0f}s"
    )
