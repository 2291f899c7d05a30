"""The smoke DAG with a recurrent policy (``model.use_lstm``): it trains, evaluates, registers, serves
and paper-trades, carrying the LSTM state bar by bar (the endpoint stays stateless)."""

import io

import pytest
from rich.console import Console

from rsc.cluster.local import free_port
from rsc.core.policy_spec import PolicySpec
from rsc.launch.run import execute
from rsc.paper.ledger import Ledger
from rsc.storage import Storage
from rsc.storage.layout import RunLayout
from tests.conftest import smoke_settings

pytestmark = pytest.mark.slow


def test_recurrent_policy_runs_the_whole_dag(tmp_path, ray_session):
    from ray import serve

    cfg = smoke_settings(
        tmp_path,
        f"ray.address={ray_session.address}",
        f"serve.port={free_port()}",
        "train.algorithm_config=rllib_configs/ppo_lstm_smoke.yaml",
        "registry.model_name=rsc-lstm",
    )
    try:
        summary = execute(cfg, console=Console(file=io.StringIO(), width=100))
    finally:
        serve.shutdown()
    cfg = summary.settings
    spec = PolicySpec.from_json(Storage().read_bytes(RunLayout(cfg.run_root).policy))
    assert spec.recurrent is not None and spec.recurrent.state == {"c": (1, 16), "h": (1, 16)}
    assert summary.deployment["model_version"] == 1
    assert set(summary.served_action["state"]) == {"c", "h"}  # the endpoint hands the state back
    assert summary.paper.decisions == cfg.paper.bars
    decisions = [e for e in Ledger(Storage(), summary.paper.ledger_uri).events() if e["type"] == "decision"]
    assert {d["status"] for d in decisions} == {"ok"} and all("state" in d for d in decisions)
    assert decisions[0]["state"] != decisions[-1]["state"]  # carried and moved on, bar by bar
