"""The MLflow registry on SQLite: train and register runs, the pyfunc model, the gate, promotion, rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from rsc.cli.main import main
from rsc.config.settings import RegistrySettings
from rsc.core.schema import OHLCV_COLUMNS, SYMBOL, TEST
from rsc.registry.gate import GateEvidence, decide_promotion
from rsc.registry.policy import Policy
from rsc.registry.promotion import PREVIOUS_CHAMPION, champion_history, rollback, shadow_pending
from rsc.registry.pyfunc import decide_on_bars
from rsc.registry.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_URI_TAG,
    configure,
    list_versions,
    log_training,
    model_version,
    resolve_alias,
    use_registry,
)
from rsc.storage import Storage, join
from tests.conftest import smoke_settings
from tests.stored_run import NO_DSR, register_policy_run, store_run

OVERRIDES = ("split.validation_end=2017-06-30", "data.symbols=[SYN]")


# -- the gate, on hand-made numbers ------------------------------------------------------------------


def gate(challenger, champion=None, benchmark=0.5, dsr=0.99, **settings):
    evidence = GateEvidence("sharpe", challenger, benchmark, champion, 1 if champion else None, dsr, NO_DSR)
    return decide_promotion(evidence, RegistrySettings(**settings))


@pytest.mark.parametrize(
    ("kwargs", "promote", "failed"),
    [
        ({"challenger": 1.0}, True, []),  # no champion yet, beats buy-and-hold, DSR above 0.95
        ({"challenger": 1.0, "champion": 0.8}, True, []),
        ({"challenger": 1.0, "champion": 0.8, "min_improvement": 0.25}, False, ["champion"]),
        ({"challenger": 1.0, "champion": 1.0}, False, ["champion"]),  # a tie is not a win
        ({"challenger": 0.4}, False, ["buy_and_hold"]),
        ({"challenger": 0.4, "require_beat_benchmark": False}, True, []),
        ({"challenger": 1.0, "dsr": 0.90}, False, ["deflated_sharpe"]),
        ({"challenger": 1.0, "dsr": 0.90, "min_deflated_sharpe": 0.5}, True, []),
        ({"challenger": 1.0, "dsr": None}, False, ["deflated_sharpe"]),
        ({"challenger": 1.0, "dsr": None, "missing_deflated_sharpe": "skip"}, True, []),
        ({"challenger": 1.0, "dsr": None, "min_deflated_sharpe": None}, True, []),
        (
            {"challenger": 0.4, "champion": 0.9, "dsr": 0.1},
            False,
            ["champion", "buy_and_hold", "deflated_sharpe"],
        ),
    ],
)
def test_gate_checks(kwargs, promote, failed):
    decision = gate(**kwargs)
    assert decision.promote is promote
    assert [c.name for c in decision.checks if c.outcome == "fail"] == failed
    assert decision.reason.startswith("promote" if promote else "keep champion")


def test_gate_reason_carries_the_numbers_and_why_dsr_is_missing():
    decision = gate(1.2345, champion=1.1, benchmark=0.75, dsr=None, missing_deflated_sharpe="skip")
    assert "sharpe 1.2345 beats champion v1 1.1000 by 0.0" in decision.reason
    assert "buy-and-hold 0.7500" in decision.reason
    assert f"deflated Sharpe {NO_DSR}; check skipped" in decision.reason
    assert decision.to_json()["evidence"]["deflated_sharpe"] is None


def test_the_final_holdout_goes_on_the_record_and_is_never_judged():
    line = "Final holdout 2018-10-01..2018-12-31 (63 bars): ...; this holdout has been used by 3 model(s)."
    evidence = GateEvidence("sharpe", 1.0, 0.5, None, None, 0.99, NO_DSR, holdout=line)
    decision = decide_promotion(evidence, RegistrySettings())
    assert decision.promote and decision.checks[-1].name == "holdout"
    assert decision.checks[-1].outcome == "skip" and "used by 3 model(s)" in decision.reason
    assert [c.name for c in gate(1.0).checks] == ["comparable", "champion", "buy_and_hold", "deflated_sharpe"]


# -- runs, versions and aliases ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_registry(tmp_path_factory):
    """A stored run; a train run logged for the first policy; three versions registered through the gate.

    v1: first (no champion) -> champion.  v2: worse than v1 -> challenger only.  v3: better -> champion.
    """
    root = tmp_path_factory.mktemp("registry")
    cfg = smoke_settings(root, *OVERRIDES, "registry.min_deflated_sharpe=0.95")
    uris = store_run(cfg)
    configure(cfg.tracking_uri, cfg.registry.experiment, join(cfg.storage.root, "mlartifacts"))
    history = [{"iteration": i, "episode_return_mean": 0.1 * i, "eval/sharpe": 0.2 * i} for i in (1, 2, 3)]
    train_run = log_training(
        "smoke",
        params={"algorithm": "PPO", "hyperparameters": {"lr": 0.001}},
        history=history,
        tags={MODEL_URI_TAG: join(cfg.run_root, "model-1"), "rsc.data.split_sha256": "abc"},
        config=cfg.model_dump(mode="json"),
    )
    results = [register_policy_run(cfg, uris, 1, sharpe=1.0)]
    results.append(register_policy_run(cfg, uris, 2, sharpe=0.8))
    results.append(register_policy_run(cfg, uris, 3, sharpe=1.4))
    return cfg, uris, train_run, results


@pytest.fixture
def registry(module_registry):
    """The module's registry, with MLflow pointed at it again (other tests point it elsewhere)."""
    use_registry(module_registry[0].tracking_uri)
    return module_registry


def test_register_logs_into_the_train_run(registry):
    cfg, _, train_run, results = registry
    _, first = results[0]
    assert first.run_id == train_run and model_version(cfg.model_name, 1).run_id == train_run
    client = MlflowClient()
    run = client.get_run(train_run)
    curve = client.get_metric_history(train_run, "episode_return_mean")
    assert [(m.step, m.value) for m in curve] == [(1, 0.1), (2, 0.2), (3, pytest.approx(0.3))]
    assert run.data.metrics["test/policy/sharpe"] == 1.0 and run.data.metrics["test/statistics/dsr"] == 0.99
    assert run.data.params["hyperparameters/lr"] == "0.001" and "env/window" in run.data.params
    assert run.data.tags["rsc.data.split_sha256"] == "abc" and run.data.tags["rsc.kind"] == "train"
    assert run.data.tags["rsc.evaluation_uri"].endswith("evaluation-1/metrics.json")
    artifacts = {a.path for a in client.list_artifacts(train_run)}
    assert {"config.json", "metrics.json", "report.html", "gate"} <= artifacts


def test_a_policy_without_train_run_gets_its_own_run(registry):
    _, _, train_run, results = registry
    run = MlflowClient().get_run(results[1][1].run_id)
    assert run.info.run_id != train_run and run.data.tags["rsc.kind"] == "policy"
    assert run.data.tags["rsc.checkpoint_uri"].endswith("model-2/checkpoint")
    assert len(run.data.tags["rsc.git_commit"]) == 40
    assert "config.json" in {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}


def test_gate_decisions_and_aliases(registry):
    cfg, _, _, results = registry
    name = cfg.model_name
    (_, first), (_, second), (_, third) = results
    assert (first.version, first.promoted, first.champion_version) == (1, True, 1)
    assert (second.version, second.promoted, second.champion_version) == (2, False, 1)
    assert (
        "sharpe 0.8000 does not beat champion v1 on 2017-07-03..2018-06-13 (as recorded) 1.0000"
        in second.reason
    )
    assert (third.promoted, third.champion_version) == (True, 3)
    refused = model_version(name, 2)
    assert refused.tags["rsc.gate.promote"] == "False" and refused.tags["rsc.gate.reason"] == second.reason
    assert refused.metrics["gate/champion"] == 1.0 and refused.metrics["gate/challenger"] == 0.8
    decision = json.loads(
        mlflow.artifacts.load_text(f"runs:/{refused.run_id}/gate/" + _only_gate_file(refused.run_id))
    )
    assert decision["promote"] is False and decision["evidence"]["champion_version"] == 1
    assert resolve_alias(name, CHALLENGER) == 3 and resolve_alias(name, PREVIOUS_CHAMPION) == 1


def _only_gate_file(run_id: str) -> str:
    (entry,) = MlflowClient().list_artifacts(run_id, "gate")
    return entry.path.rsplit("/", 1)[1]


def test_missing_dsr_rejects_with_the_reason(registry, tmp_path):
    cfg, uris, _, _ = registry
    _, result = register_policy_run(cfg, uris, 4, sharpe=9.0, dsr=None)
    assert not result.promoted and result.champion_version == 3
    assert f"deflated Sharpe {NO_DSR}; a DSR above 0.95 is required" in result.reason
    skipping = cfg.model_copy(
        update={"registry": cfg.registry.model_copy(update={"missing_deflated_sharpe": "skip"})}
    )
    _, result = register_policy_run(skipping, uris, 5, sharpe=9.0, dsr=None)
    assert result.promoted and "check skipped" in result.reason
    assert rollback(cfg.model_name) == (5, 3)  # leave the module's champion as it was


def another_model(cfg, name: str):
    """The same settings with another registered model name and no DSR threshold."""
    update = {"model_name": name, "min_deflated_sharpe": None}
    return cfg.model_copy(update={"registry": cfg.registry.model_copy(update=update)})


def test_with_shadow_bars_a_passing_version_waits_as_challenger_instead_of_promotion(registry):
    """``registry.shadow_bars``: the first version still becomes champion (there is nothing to shadow);
    a later one that passes the test window stays challenger, pending its shadow record."""
    cfg, uris = another_model(registry[0], "shadowed"), registry[1]
    cfg = cfg.model_copy(update={"registry": cfg.registry.model_copy(update={"shadow_bars": 15})})
    _, first = register_policy_run(cfg, uris, 41, sharpe=1.0)
    _, second = register_policy_run(cfg, uris, 42, sharpe=1.5)
    assert first.promoted and first.champion_version == first.version
    assert not second.promoted and second.champion_version == first.version
    assert second.reason.startswith("in shadow for 15 bars before the gate decides; test window: promote:")
    waiting = model_version(cfg.model_name, second.version)
    assert waiting.tags["rsc.shadow.status"] == "pending" and waiting.tags["rsc.shadow.bars"] == "15"
    assert json.loads(waiting.tags["rsc.event.shadow_started"])["bars"] == 15
    assert shadow_pending(cfg.model_name, second.version) == 15
    assert shadow_pending(cfg.model_name, first.version) is None
    assert resolve_alias(cfg.model_name, CHALLENGER) == second.version


def test_rollback_walks_the_champion_history(registry):
    cfg, uris = another_model(registry[0], "walk"), registry[1]
    for seed, sharpe in ((11, 1.0), (12, 1.5), (13, 2.0)):
        register_policy_run(cfg, uris, seed, sharpe)
    assert champion_history("walk") == [1, 2, 3]
    assert rollback("walk") == (3, 2)
    assert resolve_alias("walk", CHAMPION) == 2 and resolve_alias("walk", PREVIOUS_CHAMPION) == 1
    assert "rsc.rolled_back" in model_version("walk", 3).tags
    assert rollback("walk") == (2, 1)
    assert resolve_alias("walk", PREVIOUS_CHAMPION) is None
    with pytest.raises(LookupError, match="no earlier champion"):
        rollback("walk")
    assert champion_history("walk") == [1] and resolve_alias("walk", CHAMPION) == 1


def test_cli_list_promote_rollback(registry, capsys):
    cfg, uris = another_model(registry[0], "cli"), registry[1]
    register_policy_run(cfg, uris, 21, sharpe=1.0)
    register_policy_run(cfg, uris, 22, sharpe=0.5)  # refused by the gate: stays challenger
    config = [
        "configs/base.yaml",
        "configs/smoke.yaml",
        f"storage.root={cfg.storage.root}",
        "registry.model_name=cli",
        "registry.min_deflated_sharpe=null",
    ]
    capsys.readouterr()
    assert main(["registry", "list", *config]) == 0
    listing = capsys.readouterr().out
    assert "champion" in listing and "challenger" in listing and "does not beat champion" in listing
    assert list_versions("cli") == [model_version("cli", 1), model_version("cli", 2)]
    assert [v.aliases for v in list_versions("cli")] == [(CHAMPION,), (CHALLENGER,)]
    assert list_versions("no-such-model") == []

    assert main(["registry", "promote", "challenger", *config]) == 1  # the gate still says no
    assert resolve_alias("cli", CHAMPION) == 1
    assert main(["registry", "promote", "2", *config, "--force"]) == 0
    out = capsys.readouterr().out
    assert "forced by the operator" in out and "champion is version 2 (was 1)" in out
    assert model_version("cli", 2).tags["rsc.gate.forced"] == "true"
    assert main(["registry", "rollback", *config]) == 0
    assert "champion is version 1 again (was 2)" in capsys.readouterr().out
    assert main(["registry", "rollback", *config]) == 2
    assert "no earlier champion" in capsys.readouterr().err


def test_cli_errors_are_one_line_not_a_traceback(registry, capsys):
    cfg, uris = another_model(registry[0], "cli-errors"), registry[1]
    config = [
        "configs/base.yaml",
        "configs/smoke.yaml",
        f"storage.root={cfg.storage.root}",
        "registry.model_name=cli-errors",
    ]
    assert main(["registry", "rollback", *config]) == 2  # no such registered model yet
    assert "cli-errors" in capsys.readouterr().err
    assert main(["serve", *config]) == 2
    assert "nothing to serve: no version of cli-errors" in capsys.readouterr().err
    register_policy_run(cfg, uris, 31, sharpe=1.0)
    assert main(["registry", "promote", "7", *config]) == 2
    assert "cli-errors" in capsys.readouterr().err
    tags_before = model_version("cli-errors", 1).tags
    assert main(["registry", "promote", "champion", *config]) == 2
    assert "version 1 is already the champion" in capsys.readouterr().err
    assert model_version("cli-errors", 1).tags == tags_before  # no gate decision written over it


# -- the pyfunc model, without Ray -------------------------------------------------------------------

BLOCK_RAY = """
import sys

class BlockRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"{name} is blocked: the model must load without Ray")
        return None

sys.meta_path.insert(0, BlockRay())
"""

LOAD_AND_ACT = """
import json, sys
import mlflow.pyfunc
import pandas as pd

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_registry_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(f"models:/{sys.argv[2]}@champion")
bars = pd.read_json(sys.argv[3], orient="split")
out = model.predict(bars, params={"position": 1.0, "unrealised_return": 0.02})
import rsc
print(json.dumps({
    "action": int(out["action"][0]),
    "target_position": float(out["target_position"][0]),
    "ray_loaded": any(m == "ray" or m.startswith("ray.") for m in sys.modules),
    "rsc_from": rsc.__file__,
}))
"""


def test_pyfunc_loads_and_acts_without_ray(registry, tmp_path):
    cfg, uris, _, _ = registry
    name = cfg.model_name
    frame = Storage().read_dataset(uris["split"])
    bars = frame[(frame["part"] == TEST) & (frame[SYMBOL] == "SYN")][list(OHLCV_COLUMNS)].tail(120)
    bars_file = tmp_path / "bars.json"
    bars.reset_index(drop=True).to_json(bars_file, orient="split")
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCK_RAY))
    script = tmp_path / "load.py"
    script.write_text(LOAD_AND_ACT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(tmp_path)  # only the blocker: rsc must come from the model itself
    done = subprocess.run(
        [sys.executable, str(script), cfg.tracking_uri, name, str(bars_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["ray_loaded"] is False
    assert "/code/rsc/__init__.py" in served["rsc_from"]  # the code logged with the model
    champion = Storage().local_path(join(cfg.run_root, "model-3"))
    expected = decide_on_bars(Policy.load(champion), bars.reset_index(drop=True), 1.0, 0.02)
    assert served["action"] == int(expected["action"][0])
    assert served["target_position"] == pytest.approx(float(expected["target_position"][0]))


def test_logged_model_has_signature_example_and_pinned_requirements(registry):
    cfg, _, _, _ = registry
    info = mlflow.models.get_model_info(f"models:/{cfg.model_name}@{CHAMPION}")
    inputs = [c["name"] for c in info.signature.inputs.to_dict()]
    assert inputs == list(OHLCV_COLUMNS)
    assert {p.name for p in info.signature.params} == {"position", "unrealised_return", "state", "symbol"}
    local = mlflow.artifacts.download_artifacts(f"models:/{cfg.model_name}@{CHAMPION}")
    requirements = Path(local, "requirements.txt").read_text()
    assert "torch==" in requirements and "ray" not in requirements
    example = json.loads(Path(local, "input_example.json").read_text())
    assert example["inputs"]["columns"] == list(OHLCV_COLUMNS) and example["params"]["position"] == 0.0
    assert len(example["inputs"]["data"]) == Policy.load(os.path.join(local, "artifacts", "policy")).min_bars
