"""The whole DAG through the real KFP local runner, real Ray, MLflow on SQLite and Ray Serve over HTTP."""

import io
import re

import pytest
import requests
from rich.console import Console

from rsc.cluster.local import free_port
from rsc.launch.run import execute
from rsc.paper.ledger import Ledger
from rsc.registry.tracking import CHAMPION, model_version, resolve_alias, use_registry
from rsc.storage import Storage, join
from tests.conftest import smoke_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, ray_session):
    """The whole DAG on the session's head; its Serve app is shut down afterwards (Serve keeps one HTTP
    port per cluster, and later tests start their own)."""
    from ray import serve

    root = tmp_path_factory.mktemp("e2e")
    cfg = smoke_settings(
        root,
        f"ray.address={ray_session.address}",
        f"serve.port={free_port()}",
        "env.spread_factor=0.5",  # a range-based spread and a stop-loss, through every stage
        "env.stop_loss=0.05",
    )
    terminal = io.StringIO()
    summary = execute(cfg, console=Console(file=terminal, width=100))
    assert summary.settings.run.id and summary.settings.run_root.endswith(f"/smoke/{summary.settings.run.id}")
    yield summary.settings, summary, terminal.getvalue()
    serve.shutdown()


def test_terminal_shows_stages_trials_and_summary_only(demo_run):
    """Ray, RLlib, Tune and KFP output went to the run's logs; the terminal has a line per stage."""
    cfg, summary, terminal = demo_run
    lines = terminal.splitlines()
    assert len(lines) <= 150, terminal
    for stage in ("ingest", "features", "split", "tune", "train", "evaluate", "register", "deploy", "paper"):
        assert any(re.fullmatch(rf"v {stage} +[0-9.ms ]+s", line) for line in lines), (stage, terminal)
    assert sum("tune: trial " in line for line in lines) >= cfg.tune.num_samples
    assert sum("train: iteration " in line for line in lines) == cfg.train.iterations
    assert "Test period: policy vs benchmarks" in terminal
    for noise in ("AlgorithmConfig", "Executing task", "executor_input", "WARNING", "Traceback"):
        assert noise not in terminal, noise
    logs = Storage().local_path(join(cfg.run_root, "logs"))
    assert summary.logs == str(logs)
    assert {"run.log", "events.jsonl", "tune.log", "train.log", "deploy.log"} <= {
        p.name for p in logs.iterdir()
    }
    assert "Executing task" in (logs / "run.log").read_text()


def test_bars_were_ingested(demo_run):
    cfg, _, _ = demo_run
    manifest = Storage().read_manifest(join(cfg.run_root, "bars"))
    expected = 1258  # S&P 500 trading days 2014-01-02 .. 2018-12-31 in the bundled sample
    assert manifest["rows"] == expected
    assert len(Storage().read_dataset(join(cfg.run_root, "bars"))) == expected


def test_model_version_is_champion(demo_run):
    cfg, summary, _ = demo_run
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.tracking_uri)
    assert resolve_alias(cfg.model_name, CHAMPION) == summary.deployment["model_version"] == 1


def test_train_run_holds_curve_provenance_evaluation_and_gate(demo_run):
    cfg, summary, _ = demo_run
    from mlflow.tracking import MlflowClient

    use_registry(cfg.tracking_uri)
    version = model_version(cfg.model_name, summary.deployment["model_version"])
    tags = version.run_tags
    assert tags["rsc.kind"] == "train" and tags["rsc.model_uri"] == join(cfg.run_root, "model")
    assert tags["rsc.data.split_sha256"] == Storage().read_manifest(join(cfg.run_root, "split"))["sha256"]
    assert tags["rsc.data.bars_sha256"] == Storage().read_manifest(join(cfg.run_root, "bars"))["sha256"]
    assert tags["rsc.checkpoint_uri"].endswith("/model/checkpoint") and tags["rsc.git_commit"]
    curve = MlflowClient().get_metric_history(version.run_id, "eval/sharpe")
    assert [m.step for m in curve] == list(range(1, cfg.train.iterations + 1))
    assert "test/policy/sharpe" in version.metrics and "test/buy_and_hold/sharpe" in version.metrics
    assert version.tags["rsc.gate.promote"] == "True" and "no champion yet" in version.tags["rsc.gate.reason"]


def test_artifacts_left_behind(demo_run):
    cfg, _, _ = demo_run
    root = Storage().local_path(cfg.run_root)
    assert (root / "model" / "checkpoint").is_dir()
    assert (root / "evaluation" / "report.html").read_text().count("data:image/png;base64,") >= 1
    assert (Storage().local_path(cfg.storage.root) / "mlflow.db").is_file()
    contract = Storage().read_json(join(cfg.run_root, "model", "policy.json"))
    assert contract["env"]["spread_factor"] == 0.5 and contract["env"]["stop_loss"] == 0.05
    search = Storage().read_json(join(cfg.run_root, "evaluation", "metrics.json"))["search"]
    every, iterations = cfg.train.eval_every, cfg.train.iterations
    assert search["final_training_checkpoints"] == len({1, *range(every, iterations + 1, every)})
    assert search["raw_count"] == (
        search["tune_checkpoints"] + search["walk_forward_checkpoints"] + search["final_training_checkpoints"]
    )
    assert 1 <= search["effective_trials"] <= search["clustered_series"] == search["tune_checkpoints"]


def test_served_action_for_valid_request(demo_run):
    _, summary, _ = demo_run
    url = summary.deployment["url"]
    model = requests.get(f"{url}/v1/model", timeout=10).json()
    window = [[0.0] * len(model["feature_names"])] * model["window"]
    response = requests.post(f"{url}/v1/act", json={"features": window, "position": 0.0}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["action"] in range(len(model["positions"]))
    assert body["target_position"] == model["positions"][body["action"]]
    assert summary.served_action["model_version"] == body["model_version"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"features": [[0.0]]}, "must have shape"),
        ({}, "exactly one of 'bars', 'features'"),
        ({"bars": [{"open": 1, "high": 1, "low": 1, "close": 1}]}, "volume"),
    ],
)
def test_malformed_request_is_a_clear_4xx(demo_run, payload, message):
    _, summary, _ = demo_run
    response = requests.post(f"{summary.deployment['url']}/v1/act", json=payload, timeout=30)
    assert response.status_code == 422
    assert message in response.text


def test_nan_is_rejected_not_a_500(demo_run):
    _, summary, _ = demo_run
    response = requests.post(
        f"{summary.deployment['url']}/v1/act",
        data='{"features": [[NaN]]}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 422


def test_paper_ledger_adds_up(demo_run):
    """The replay went through the paper trader and the real endpoint; its ledger balances."""
    cfg, summary, _ = demo_run
    assert summary.paper.decisions == cfg.paper.bars and summary.paper.outcome.stopped == "end of feed"
    events = list(Ledger(Storage(), summary.paper.ledger_uri).events())
    decisions = [e for e in events if e["type"] == "decision"]
    assert {d["status"] for d in decisions} == {"ok"}
    assert {d["model_version"] for d in decisions} == {summary.deployment["model_version"]}
    marks = [e for e in events if e["type"] == "mark"]
    assert len(marks) == cfg.paper.bars
    for mark in marks:
        value = sum(units * mark["prices"][symbol] for symbol, units in mark["units"].items())
        assert mark["cash"] + value == pytest.approx(mark["equity"], rel=1e-12, abs=1e-6)
    fills = [e for e in events if e["type"] == "fill"]
    cash = cfg.env.initial_cash - sum(f["units"] * f["price"] + f["cost"] for f in fills)
    cash -= sum(m["borrow"] for m in marks)
    book = summary.paper.outcome.state.books["champion"]
    assert cash == pytest.approx(book.cash, abs=1e-9 * cfg.env.initial_cash)
    assert book.equity == summary.paper.final_equity == marks[-1]["equity"]


def test_summary_fits_80_columns_with_every_strategy(demo_run):
    from rich.console import Console

    from rsc.launch.run import print_summary

    cfg, summary, _ = demo_run
    console = Console(width=80, record=True)
    print_summary(summary, cfg, console)
    text = console.export_text()
    assert "…" not in text, text
    rows = {line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")}
    assert {"policy", "buy_and_hold", "flat"} <= rows
    assert f"serving {cfg.model_name} v{summary.deployment['model_version']} (@champion)" in text


def test_every_file_under_the_run_root_belongs_to_the_run_layout(demo_run):
    """Paths under a run root come from one RunLayout: nothing written beside it."""
    from rsc.core.policy_spec import SCHEMA_VERSION, PolicySpec
    from rsc.storage.layout import RunLayout, field_of

    cfg, _, _ = demo_run
    root = Storage().local_path(cfg.run_root)
    files = [str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()]
    assert len(files) > 20
    assert [path for path in files if field_of(path) is None] == []
    spec = PolicySpec.from_json(Storage().read_bytes(RunLayout(cfg.run_root).policy))
    assert spec.schema_version == SCHEMA_VERSION and spec.observation.size == cfg.env.window * 5 + 2
