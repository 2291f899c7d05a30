"""One training plan: settings x algorithm YAML x tuned parameters, each value with its source."""

from __future__ import annotations

from rsc.cli.main import main
from rsc.rl.plan import resolve_plan
from tests.conftest import CONFIGS, smoke_settings


def test_settings_win_over_the_yaml_and_say_so(tmp_path):
    plan = resolve_plan(smoke_settings(tmp_path))
    assert plan.iterations == 2 and plan.values["train.iterations"].source == "settings train.iterations"
    unset = resolve_plan(smoke_settings(tmp_path, "train.iterations=null"))
    assert unset.values["train.iterations"].source == "ppo_smoke.yaml stop.training_iteration"
    assert (
        plan.selection_iterations == plan.sweep_iterations == 1
    )  # the walk-forward falls back to the sweep's
    assert plan.values["tune.selection.iterations"].source == "settings tune.iterations"


def test_tuned_hyperparameters_win_over_the_yaml(tmp_path):
    plan = resolve_plan(smoke_settings(tmp_path), {"lr": 0.123})
    assert plan.training["lr"] == 0.123 and plan.values["training.lr"].source == "tuned"
    assert plan.values["training.num_epochs"].source == "ppo_smoke.yaml training"


def test_the_algorithm_yaml_env_config_wins_over_the_run_env(tmp_path):
    plan = resolve_plan(smoke_settings(tmp_path, "train.algorithm_config=rllib_configs/sac_smoke.yaml"))
    assert plan.env.action == "continuous" and plan.values["env.action"].source == "sac_smoke.yaml env_config"
    assert plan.values["env.window"].source == "settings env"


def test_dry_run_prints_the_resolved_config_and_trains_nothing(tmp_path, capsys):
    code = main(
        [
            "train",
            str(CONFIGS / "base.yaml"),
            str(CONFIGS / "smoke.yaml"),
            f"storage.root={tmp_path}",
            "--dry-run",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert (
        "train.iterations" in out and "settings train.iterations" in out and "ppo_smoke.yaml training" in out
    )
    assert not (tmp_path / "smoke").exists()  # nothing written
