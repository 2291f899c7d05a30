"""RLlib training from rllib_configs/: every algorithm, checkpoints on file:// and s3://, reproducibility,
an env-runner crash, and resuming a killed `rsc train`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rsc.config import ConfigError
from rsc.core.observation import observation_size
from rsc.core.schema import TRAIN
from rsc.rl.algorithm import build_algorithm_config
from rsc.rl.envs import env_config
from rsc.rl.spec import effective_env, load_algorithm_spec
from rsc.rl.train import load_state, train_algorithm
from rsc.storage import Storage, join
from tests.conftest import CONFIGS, PROJECT

pytestmark = pytest.mark.slow
ALGORITHMS = ["ppo", "dqn", "appo", "sac"]


def algorithm_config(cfg, split, name: str, **training):
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / f"{name}_smoke.yaml")
    env = effective_env(spec, cfg.env)
    environment = env_config(split.split_uri, split.scaler_uri, TRAIN, env, cfg.storage)
    return spec, env, build_algorithm_config(spec, environment, seed=cfg.run.seed, training=training)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_full_configs_load_and_validate(name, smoke_split):
    cfg, split = smoke_split
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / f"{name}.yaml")
    environment = env_config(split.split_uri, split.scaler_uri, TRAIN, effective_env(spec, cfg.env))
    build_algorithm_config(spec, environment, seed=1).validate()
    assert spec.search_space and spec.tune.metric == "eval/sharpe"


def test_unknown_training_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("algorithm: PPO\ntraining:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'training.learning_rate' in .*bad.yaml"):
        load_algorithm_spec(path)
    path.write_text("algorithm: PPO\nenv_config:\n  windw: 3\n")
    with pytest.raises(ConfigError, match=r"'env_config.windw'"):
        load_algorithm_spec(path)
    path.write_text("algorithm: DQN\nreporting:\n  min_sample_steps: 10\n")
    with pytest.raises(ConfigError, match=r"'reporting.min_sample_steps'.*AlgorithmConfig.reporting"):
        load_algorithm_spec(path)
    path.write_text("algorithm: PPO\nsearch_space:\n  lr: {type: loguniform, lower: 1, upper: 0.1}\n")
    with pytest.raises(ConfigError, match=r"search_space.lr.*lower < upper"):
        load_algorithm_spec(path)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_trains_and_exports(name, smoke_split, ray_session, tmp_path):
    cfg, split = smoke_split
    _, env, config = algorithm_config(cfg, split, name)
    obs_size = observation_size(env.window, len(Storage().read_json(split.scaler_uri)["columns"]))
    result = train_algorithm(config, 2, f"file://{tmp_path}/model", Storage(), obs_size)
    assert [row["iteration"] for row in result.history] == [1, 2]
    assert "eval/sharpe" in result.best_metrics
    network = torch.jit.load(str(tmp_path / "model" / "network.pt"))
    actions = network(torch.zeros(3, obs_size))
    if env.action == "discrete":
        assert set(actions.tolist()) <= set(range(len(env.positions)))
    else:
        assert actions.shape == (3, 1) and bool((actions.abs() <= 1).all())
    assert (tmp_path / "model" / "checkpoint").is_dir()
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / f"{name}_smoke.yaml")
    for key, value in spec.reporting.items():  # the YAML's reporting section reached RLlib
        assert getattr(config, key) == value


def test_a_recurrent_policy_trains_validates_and_exports_with_its_state(smoke_split, ray_session, tmp_path):
    """model.use_lstm: the validation rollout carries the state (it crashed on a feed-forward batch), and
    the exported network, stepped with the state it hands back, acts as the module does, at any batch."""
    from rsc.env import greedy_rollout
    from rsc.rl.envs import make_env
    from rsc.rl.policy import greedy_actor

    cfg, split = smoke_split
    _, env, config = algorithm_config(cfg, split, "ppo_lstm")
    obs_size = observation_size(env.window, 5)
    result = train_algorithm(config, 1, f"file://{tmp_path}/model", Storage(), obs_size)
    assert "eval/sharpe" in result.best_metrics and result.recurrent_state == {"c": (1, 16), "h": (1, 16)}
    network = torch.jit.load(str(tmp_path / "model" / "network.pt"))
    algo = config.build_algo()
    try:
        algo.restore_from_path(str(tmp_path / "model" / "checkpoint"))
        targets = greedy_rollout(
            make_env({**config.env_config, "part": "validation", "mode": "eval"}),
            greedy_actor(algo.get_module()),
        ).positions[1:]  # the position after each step
    finally:
        algo.stop()
    episode = make_env({**config.env_config, "part": "validation", "mode": "eval"})
    obs, _ = episode.reset()
    state = [torch.zeros(5, 1, 16), torch.zeros(5, 1, 16)]  # five copies of the sequence: any batch size
    exported = []
    for _ in range(40):
        action, *state = network(torch.from_numpy(np.repeat(obs[None], 5, axis=0)), *state)
        assert len(set(action.tolist())) == 1
        exported.append(int(action[0]))
        obs, _, terminated, truncated, _ = episode.step(exported[-1])
        if terminated or truncated:
            break
    assert [env.positions[a] for a in exported] == list(targets[: len(exported)])


def test_the_validation_sharpe_the_search_ranks_on_takes_the_risk_free_rate(
    smoke_split, ray_session, tmp_path
):
    """The HPO metric ignored evaluate.risk_free_rate; the report's Sharpe ratio did not."""
    cfg, split = smoke_split
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / "ppo_smoke.yaml")
    env = effective_env(spec, cfg.env)
    sharpes = []
    for rate in (0.0, 0.2):
        environment = env_config(
            split.split_uri, split.scaler_uri, TRAIN, env, cfg.storage, risk_free_rate=rate
        )
        config = build_algorithm_config(spec, environment, seed=cfg.run.seed)
        result = train_algorithm(
            config, 1, f"file://{tmp_path}/rf{rate}", Storage(), observation_size(env.window, 5)
        )
        sharpes.append(result.best_metrics["eval/sharpe"])
    assert sharpes[1] < sharpes[0]  # the same seed and rollout, less the risk-free rate


def test_model_options_the_contract_cannot_carry_are_refused(tmp_path):
    path = tmp_path / "prev.yaml"
    path.write_text("algorithm: PPO\nmodel:\n  use_lstm: true\n  lstm_use_prev_action: true\n")
    with pytest.raises(ConfigError, match=r"model.lstm_use_prev_action in .*prev.yaml: the policy contract"):
        load_algorithm_spec(path)


def test_same_seed_same_validation_metrics(smoke_split, ray_session, tmp_path):
    cfg, split = smoke_split
    runs = []
    for attempt in range(2):
        _, env, config = algorithm_config(cfg, split, "ppo")
        obs_size = observation_size(env.window, 5)
        runs.append(
            train_algorithm(config, 2, f"file://{tmp_path}/run{attempt}", Storage(), obs_size).history
        )
    assert [r["eval/sharpe"] for r in runs[0]] == [r["eval/sharpe"] for r in runs[1]]
    assert [r["episode_return_mean"] for r in runs[0]] == [r["episode_return_mean"] for r in runs[1]]


def test_only_fresh_validations_count_as_tries(smoke_split, ray_session, tmp_path):
    """With eval_every=2, iterations 1 and 2 validate and 3 carries: the checkpoint choice saw 2 tries."""
    cfg, split = smoke_split
    spec = load_algorithm_spec(PROJECT / "rllib_configs" / "ppo_smoke.yaml")
    env = effective_env(spec, cfg.env)
    environment = env_config(split.split_uri, split.scaler_uri, TRAIN, env, cfg.storage, eval_every=2)
    config = build_algorithm_config(spec, environment, seed=cfg.run.seed)
    result = train_algorithm(
        config, 3, f"file://{tmp_path}/model", Storage(), observation_size(env.window, 5)
    )
    assert len(result.history) == 3 and result.validations == 2


def test_checkpoints_go_to_s3(smoke_split, ray_session, s3_endpoint, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    cfg, split = smoke_split
    _, env, config = algorithm_config(cfg, split, "ppo")
    storage = Storage(s3_endpoint_url=s3_endpoint)
    output = "s3://rsc-test/train-model"
    result = train_algorithm(config, 2, output, storage, observation_size(env.window, 5))
    assert storage.exists(join(output, "network.pt"))
    assert storage.exists(join(result.checkpoint_uri, "algorithm_state.pkl")) or storage.exists(
        join(result.checkpoint_uri, "rllib_checkpoint.json")
    )
    assert load_state(storage, output).iteration == 2


def test_crashed_env_runner_is_restarted(smoke_split, ray_session, tmp_path):
    cfg, split = smoke_split
    _, _, config = algorithm_config(cfg, split, "ppo")
    config = config.env_runners(num_env_runners=1).fault_tolerance(restart_failed_env_runners=True)
    algo = config.build_algo()
    group = algo.env_runner_group
    try:
        algo.train()
        pids = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        os.kill(pids[0], signal.SIGKILL)  # the env runner process dies mid-training
        sampled = None
        for _ in range(15):  # training goes on; RLlib probes, restarts and re-admits the runner
            result = algo.train()
            sampled = result["env_runners"].get("num_env_steps_sampled")
            if group.num_healthy_remote_workers() == 1 and sampled and sampled > 0:
                break
        new_pids = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        restarts = group.num_remote_worker_restarts()
    finally:
        algo.stop()
    assert restarts >= 1
    assert new_pids and new_pids[0] != pids[0]
    assert sampled and sampled > 0, "the restarted runner never sampled again"


def test_killed_training_resumes_from_its_last_commit(smoke_split, ray_head):
    cfg, _ = smoke_split
    root = cfg.storage.root.removeprefix("file://")
    command = [
        sys.executable,
        "-m",
        "rsc",
        "train",
        str(CONFIGS / "base.yaml"),
        str(CONFIGS / "smoke.yaml"),
        f"storage.root=file://{root}",
        f"ray.address={ray_head.address}",
        "train.iterations=8",
        "train.eval_every=1",
        "tune.enabled=false",
    ]
    state_file = Path(root) / "smoke" / "model" / "progress" / "state.json"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["iteration"] >= 2:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_at = json.loads(state_file.read_text())["iteration"]
            break
        time.sleep(0.2)
    assert killed_at is not None and killed_at < 8, "training finished before it could be killed"

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads(state_file.read_text())
    assert state["resumed_from"] == [killed_at]
    iterations = [row["iteration"] for row in state["history"]]
    assert iterations == list(range(1, 9)), iterations  # nothing repeated, nothing skipped
    assert f"resumed from iteration(s) [{killed_at}]" in done.stdout
    assert np.isfinite(state["best_value"])
