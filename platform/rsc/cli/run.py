"""``rsc run``: the whole DAG through the KFP local runner, then a bounded paper-trading replay."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from rsc.cluster.local import local_head
from rsc.config import Settings
from rsc.evaluate.suite import strategy_metrics
from rsc.monitor import sink_from_settings
from rsc.paper.app import ReplaySummary, replay_run
from rsc.storage import Storage, join

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    metrics: dict[str, dict[str, float]]
    deployment: dict
    served_action: dict
    paper: ReplaySummary
    seconds: float


def _served_action(url: str, cfg: Settings) -> dict:
    """One real request to the endpoint with the latest test window, for the summary."""
    import requests

    model = requests.get(f"{url}/v1/model", timeout=10).json()
    storage = Storage.from_settings(cfg.storage)
    bars = storage.read_dataset(join(cfg.run_root, "bars")).tail(model["min_bars"] + 250)
    payload = {"bars": json.loads(bars.drop(columns=["symbol"]).to_json(orient="records", date_format="iso"))}
    response = requests.post(f"{url}/v1/act", json=payload, timeout=30)
    response.raise_for_status()
    return response.json()


def execute(cfg: Settings, keep_serving: bool = False, console: Console | None = None) -> RunSummary:
    """Run the DAG (starting a local Ray head unless ``ray.address`` is set) and the paper replay."""
    from pipelines.local import run_locally  # kfp only when a run is asked for

    console = console or Console()
    started = time.monotonic()
    head = local_head() if cfg.ray.address is None else contextlib.nullcontext(None)
    with head as running:
        if running is not None:
            cfg = cfg.model_copy(update={"ray": cfg.ray.model_copy(update={"address": running.address})})
            console.print(f"[bold]Ray[/] head at {running.address}, dashboard {running.dashboard_url}")
        root = Storage.from_settings(cfg.storage).local_path(join(cfg.run_root, "kfp")) or "/tmp/rsc-kfp"
        console.rule(
            "pipeline: ingest -> features -> split -> tune -> train -> evaluate -> register -> deploy"
        )
        deployment = json.loads(run_locally(cfg.model_dump_json(), root))
        console.rule("paper trading replay")
        served = _served_action(deployment["url"], cfg)
        sink = sink_from_settings(cfg.monitor, "rsc-paper")
        paper = replay_run(cfg, deployment["url"], sink)
        metrics = Storage.from_settings(cfg.storage).read_json(
            join(cfg.run_root, "evaluation", "metrics.json")
        )
        summary = RunSummary(metrics, deployment, served, paper, time.monotonic() - started)
        print_summary(summary, cfg, console)
        if keep_serving and running is not None:
            console.print(f"Serving at {deployment['url']}/v1/act; Ctrl-C to stop.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return summary


def print_summary(summary: RunSummary, cfg: Settings, console: Console) -> None:
    strategies = strategy_metrics(summary.metrics)
    table = Table(title=f"Test period: policy vs benchmarks ({cfg.run.name})")
    columns = {  # metrics.json key -> (header, format); one row per strategy keeps it within 80 columns
        "total_return": ("return", "{:.2%}"),
        "sharpe": ("Sharpe", "{:.2f}"),
        "sortino": ("Sortino", "{:.2f}"),
        "max_drawdown": ("max DD", "{:.2%}"),
        "trades": ("trades", "{:.0f}"),
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
    console.print(
        f"Registered model: [bold]{deployment['model_name']}[/] version {deployment['model_version']} "
        f"(@champion), served at {deployment['url']}/v1/act"
    )
    console.print(f"Served action for the latest bars: {summary.served_action}")
    console.print(
        f"Paper trading: {paper.decisions} decisions, {paper.trades} trades, final equity "
        f"{paper.final_equity:,.2f} ({paper.outcome.stopped}); ledger {paper.ledger_uri}"
    )
    console.print(
        f"Artifacts under {cfg.run_root}; MLflow at {cfg.tracking_uri}; took {summary.seconds:.0f}s"
    )
