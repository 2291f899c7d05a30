"""A stored run without training: real split and scaler from synthetic bars, and a small exported policy.

The policy is a seeded linear TorchScript network in the layout the train stage writes (network.pt +
policy.json), so the evaluate stage and ``rsc report`` load and act with it exactly as with a trained one;
:func:`register_policy_run` registers such a policy with chosen test metrics, as after evaluation.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rsc.config import Settings
from rsc.core.features import feature_names
from rsc.core.observation import observation_size
from rsc.core.policy_spec import PolicySpec, RecurrentSpec
from rsc.core.schema import DRIFT_REFERENCE_FILE, NETWORK_FILE, POLICY_FILE
from rsc.data.features import add_features, indicator_refs
from rsc.data.splits import assign_parts, fit_scaler
from rsc.monitor.drift import drift_reference
from rsc.stages import register
from rsc.storage import Storage, join
from tests.helpers import synthetic_bars


class LinearGreedy(torch.nn.Module):
    """observation -> argmax of a random score: the exported network's contract (greedy actions).

    Linear by default; ``hidden`` sizes put tanh layers in between (PPO's default is ``(64, 64)``).
    """

    def __init__(self, size: int, actions: int, hidden: tuple[int, ...] = ()):
        super().__init__()
        layers: list[torch.nn.Module] = []
        for width in hidden:
            layers += [torch.nn.Linear(size, width), torch.nn.Tanh()]
            size = width
        self.scores = torch.nn.Sequential(*layers, torch.nn.Linear(size, actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scores(obs).argmax(dim=-1)


class TinyLSTM(torch.nn.Module):
    """``(observations, c, h)`` -> ``(greedy actions, c, h)``: the export of a recurrent policy (RLlib's
    LSTM: state keys ``c`` and ``h`` in sorted order, ``[B, layers=1, cell]`` each)."""

    def __init__(self, size: int, actions: int, cell: int = 8):
        super().__init__()
        self.cell = torch.nn.LSTMCell(size, cell)
        self.head = torch.nn.Linear(cell, actions)

    def forward(self, obs: torch.Tensor, c: torch.Tensor, h: torch.Tensor):
        h1, c1 = self.cell(obs, (h[:, 0], c[:, 0]))
        return self.head(h1).argmax(dim=-1), c1[:, None], h1[:, None]


class LinearTanh(torch.nn.Module):
    """observation -> a continuous action in [-1, 1] (``[B, 1]``), as an exported SAC or PPO policy."""

    def __init__(self, size: int):
        super().__init__()
        self.mean = torch.nn.Linear(size, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mean(obs))


def write_policy(
    directory: Path,
    cfg: Settings,
    scaler: dict,
    seed: int = 0,
    hidden: tuple[int, ...] = (),
    recurrent: bool = False,
) -> None:
    """A random policy over the observation, saved as the train stage of an earlier version saved one
    (``policy.json`` version 1: every stored run also checks that such a policy still loads); a recurrent
    one (which version 1 could not describe) with a version 2 ``policy.json``."""
    n_features = len(scaler["columns"])
    size = observation_size(cfg.env.window, n_features)
    torch.manual_seed(seed)
    if recurrent:
        module: torch.nn.Module = TinyLSTM(size, len(cfg.env.positions))
    elif cfg.env.action == "continuous":
        module = LinearTanh(size)
    else:
        module = LinearGreedy(size, len(cfg.env.positions), hidden)
    network = torch.jit.script(module)
    directory.mkdir(parents=True, exist_ok=True)
    network.save(str(directory / NETWORK_FILE))
    if recurrent:
        contract = PolicySpec.for_env(
            cfg.env.model_dump(mode="json"),
            indicator_refs(cfg.features),
            scaler,
            algorithm="PPO",
            recurrent=RecurrentSpec(state={"c": (1, 8), "h": (1, 8)}),
        )
        (directory / POLICY_FILE).write_text(contract.to_json())
        return
    spec = {
        "algorithm": "PPO",
        "hyperparameters": {},
        "indicators": [{"name": s.name, "window": s.window} for s in cfg.features.indicators],
        "feature_names": feature_names(indicator_refs(cfg.features)),
        "window": cfg.env.window,
        "positions": list(cfg.env.positions),
        "observation_size": size,
        "scaler": scaler,
        "env": cfg.env.model_dump(mode="json"),
        "best_iteration": 1,
        "validation": {},
        "inputs": {},
    }
    Storage().write_json(f"file://{directory / POLICY_FILE}", spec)


def write_drift_reference(storage: Storage, model_uri: str, frame: pd.DataFrame, scaler: dict) -> None:
    """As the train stage stores it: the training rows the endpoint's drift watch compares with."""
    reference = drift_reference(frame, scaler["columns"], scaler["mean"], scaler["std"])
    storage.write_bytes(join(model_uri, DRIFT_REFERENCE_FILE), reference)


def store_run(
    cfg: Settings,
    symbols: tuple[str, ...] = ("SYN",),
    n_bars: int = 900,
    trial_sharpes: list[float] | None = None,
    trial_returns: np.ndarray | None = None,
    recurrent: bool = False,
) -> dict[str, str]:
    """Write split, scaler, model (and optional tune outputs) under ``cfg.run_root``; returns their URIs."""
    storage = Storage.from_settings(cfg.storage)
    bars = pd.concat(
        [synthetic_bars(n_bars, seed=i, symbol=s) for i, s in enumerate(symbols)], ignore_index=True
    )
    features = add_features(bars, cfg.features)
    frame = assign_parts(features, cfg.split.train_end, cfg.split.validation_end, cfg.split.holdout_bars)
    scaler = fit_scaler(frame, feature_names(indicator_refs(cfg.features)))
    uris = {
        "split": join(cfg.run_root, "split"),
        "scaler": join(cfg.run_root, "scaler.json"),
        "model": join(cfg.run_root, "model"),
    }
    storage.write_dataset(uris["split"], frame)
    storage.write_json(uris["scaler"], scaler)
    write_policy(storage.local_path(uris["model"]), cfg, scaler, recurrent=recurrent)
    write_drift_reference(storage, uris["model"], frame, scaler)
    if trial_sharpes is not None:
        buffer = io.BytesIO()
        pd.DataFrame(
            {"trial_id": [f"t{i}" for i in range(len(trial_sharpes))], "eval/sharpe": trial_sharpes}
        ).to_parquet(buffer)
        storage.write_bytes(join(cfg.run_root, "tune", "trials.parquet"), buffer.getvalue())
    if trial_returns is not None:
        buffer = io.BytesIO()
        pd.DataFrame(trial_returns, columns=[f"t{i}" for i in range(trial_returns.shape[1])]).to_parquet(
            buffer
        )
        storage.write_bytes(join(cfg.run_root, "tune", "trial_returns.parquet"), buffer.getvalue())
    return uris


NO_DSR = "not available for this run: no hyperparameter search was recorded (tune/trials.parquet is absent)"


def evaluated_metrics(
    sharpe: float, buy_and_hold: float, dsr: float | None, period: dict[str, str] | None = None
) -> dict:
    """metrics.json as the evaluate stage writes it, with chosen numbers (over ``period``, if given)."""
    return {
        **({"period": period} if period else {}),
        "policy": {"sharpe": sharpe, "total_return": sharpe / 10},
        "buy_and_hold": {"sharpe": buy_and_hold, "total_return": buy_and_hold / 10},
        "statistics": {"psr": 0.9, "dsr": dsr, "n_trials": None if dsr is None else 8},
        "notes": {} if dsr is not None else {"dsr": NO_DSR},
        "verdict": "test",
    }


def register_policy_run(
    cfg: Settings,
    uris: dict[str, str],
    seed: int,
    sharpe: float,
    buy_and_hold: float = 0.5,
    dsr: float | None = 0.99,
    hidden: tuple[int, ...] = (),
    recurrent: bool = False,
) -> tuple[str, register.RegisterResult]:
    """A new policy folder (seeded random network), its metrics and report, then the register stage."""
    storage = Storage.from_settings(cfg.storage)
    model_uri = join(cfg.run_root, f"model-{seed}")
    scaler = storage.read_json(uris["scaler"])
    write_policy(storage.local_path(model_uri), cfg, scaler, seed, hidden, recurrent)
    write_drift_reference(storage, model_uri, storage.read_dataset(uris["split"]), scaler)
    metrics_uri = join(cfg.run_root, f"evaluation-{seed}", "metrics.json")
    report_uri = join(cfg.run_root, f"evaluation-{seed}", "report.html")
    test = storage.read_dataset(uris["split"]).query("part == 'test'")["timestamp"]
    period = {"start": str(test.min())[:10], "end": str(test.max())[:10]}
    storage.write_json(metrics_uri, evaluated_metrics(sharpe, buy_and_hold, dsr, period))
    storage.write_bytes(report_uri, b"<html>report</html>")
    return model_uri, register.run(cfg, uris["split"], model_uri, metrics_uri, report_uri)
