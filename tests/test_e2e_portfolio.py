"""A portfolio policy through the whole DAG on the KFP local runner: bars of three bundled stocks (closes
only) to a registered weight model, served weights over HTTP and paper rebalances that add up."""

import io

import pytest
import requests
from rich.console import Console

from rsc.cluster.local import free_port
from rsc.launch.run import execute
from rsc.monitor import NullSink
from rsc.paper.app import replay_run
from rsc.paper.ledger import Ledger
from rsc.registry.tracking import CHAMPION, resolve_alias, use_registry
from rsc.storage import Storage, join
from tests.conftest import smoke_settings

pytestmark = pytest.mark.slow
SYMBOLS = ["AAPL", "KO", "XOM"]


@pytest.fixture(scope="module")
def portfolio_run(tmp_path_factory, ray_session):
    from ray import serve

    root = tmp_path_factory.mktemp("e2e-portfolio")
    cfg = smoke_settings(
        root,
        f"ray.address={ray_session.address}",
        f"serve.port={free_port()}",
        "run.name=alloc",
        "env.kind=portfolio",
        f"data.symbols=[{','.join(SYMBOLS)}]",
        "env.fill=next_close",
        "env.max_position=0.6",
        "env.max_leverage=0.9",
        "paper.risk.max_leverage=0.9",
    )
    summary = execute(cfg, console=Console(file=io.StringIO(), width=100))
    yield summary.settings, summary
    serve.shutdown()


def test_a_portfolio_model_is_registered_in_its_own_lineage(portfolio_run):
    cfg, summary = portfolio_run
    assert cfg.model_name == "rsc-alloc-portfolio-aapl_ko_xom-1d"
    use_registry(cfg.tracking_uri)
    assert resolve_alias(cfg.model_name, CHAMPION) == summary.deployment["model_version"] == 1
    single = smoke_settings(Storage().local_path(cfg.storage.root)).model_name
    assert resolve_alias(single, CHAMPION) is None  # a single-asset lineage is never touched
    results = Storage().read_json(join(cfg.run_root, "evaluation", "metrics.json"))
    assert results["portfolio"]["symbols"] == SYMBOLS
    assert {"equal_weight", "min_variance", "inverse_volatility", "buy_and_hold_KO"} <= set(results)
    report = Storage().read_bytes(join(cfg.run_root, "evaluation", "report.html")).decode()
    assert 'data-figure="weights"' in report


def test_served_weights_for_the_latest_bars_and_a_batch(portfolio_run):
    _, summary = portfolio_run
    served = summary.served_action
    assert sorted(served["weights"]) == SYMBOLS and "action" not in served
    assert all(w >= 0 for w in served["weights"].values()) and sum(served["weights"].values()) <= 0.9 + 1e-9
    url = summary.deployment["url"]
    model = requests.get(f"{url}/v1/model", timeout=10).json()
    assert model["kind"] == "portfolio" and model["symbols"] == SYMBOLS
    window = [[0.0] * len(model["feature_names"])] * model["window"]
    one = {"asset_features": dict.fromkeys(SYMBOLS, window), "weights": {"KO": 0.3}}
    batch = requests.post(f"{url}/v1/act/batch", json={"requests": [one, one]}, timeout=30).json()
    first, second = (result["weights"] for result in batch["results"])
    assert first.keys() == second.keys() and list(first.values()) == pytest.approx(
        list(second.values()), abs=1e-6
    )
    wrong = requests.post(f"{url}/v1/act", json={"features": window}, timeout=30)
    assert wrong.status_code == 422 and "send 'assets'" in wrong.text
    schema = requests.get(f"{url}/openapi.json", timeout=10).json()["components"]["schemas"]
    assert {"assets", "asset_features", "weights"} <= set(schema["ActRequest"]["properties"])
    assert "weights" in schema["ActResponse"]["properties"]


def test_paper_rebalances_add_up_per_bar(portfolio_run):
    cfg, summary = portfolio_run
    events = list(Ledger(Storage(), summary.paper.ledger_uri).events())
    decisions = [e for e in events if e["type"] == "decision"]
    assert {d["status"] for d in decisions} == {"ok"} and {d["symbol"] for d in decisions} == set(SYMBOLS)
    marks = [e for e in events if e["type"] == "mark" and e["book"] == CHAMPION]
    assert len(marks) == cfg.paper.bars
    for mark in marks:  # cash + the positions at the marks = equity, every bar
        value = sum(units * mark["prices"][symbol] for symbol, units in mark["units"].items())
        assert mark["cash"] + value == pytest.approx(mark["equity"], rel=1e-12, abs=1e-6)
        gross = sum(abs(units) * mark["prices"][s] for s, units in mark["units"].items()) / mark["equity"]
        assert gross <= 0.9 * 1.05  # within the limit, give or take a bar's price moves
    fills = [e for e in events if e["type"] == "fill" and e["book"] == CHAMPION]
    wanted = {d["symbol"] for d in decisions if d["book"] == CHAMPION and d["target"] > 0}
    assert fills and {f["symbol"] for f in fills} == wanted  # every asset the weights asked for was bought


def test_shadow_challenger_trades_weights_beside_the_champion(portfolio_run):
    cfg, summary = portfolio_run
    from mlflow import MlflowClient

    use_registry(cfg.tracking_uri)
    MlflowClient().set_registered_model_alias(cfg.model_name, "challenger", "1")
    shadow = cfg.model_copy(
        update={"paper": cfg.paper.model_copy(update={"shadow": True, "session": "shadow"})}
    )
    replay = replay_run(shadow, summary.deployment["url"], NullSink())
    events = list(Ledger(Storage(), replay.ledger_uri).events())
    books = {e["book"] for e in events if e["type"] == "decision" and e["status"] == "ok"}
    assert books == {"champion", "challenger"}
    final = replay.outcome.state.books
    assert final["challenger"].equity == pytest.approx(final["champion"].equity, rel=1e-9)  # one version
