"""Acting with a trained RLModule: greedy actions and the export of its network for serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule


class InferenceNetwork(torch.nn.Module):
    """observation batch ``[B, D]`` -> action scores ``[B, A]``; what serving runs, without RLlib."""

    def __init__(self, module: RLModule):
        super().__init__()
        self.module = module

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.module.forward_inference({Columns.OBS: obs})
        return out[Columns.ACTION_DIST_INPUTS] if Columns.ACTION_DIST_INPUTS in out else out["qf_preds"]


def greedy_actor(module: RLModule) -> Callable[[np.ndarray], int]:
    """observation ``[D]`` -> the highest-scoring action index."""
    network = InferenceNetwork(module).eval()

    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(network(torch.from_numpy(np.asarray(obs, dtype=np.float32)[None]))[0].argmax())

    return act


def export_network(module: RLModule, observation_size: int, path: Path) -> Path:
    """TorchScript of the inference path: loads with ``torch.jit.load``, no RLlib needed."""
    network = InferenceNetwork(module).eval()
    example = torch.zeros((1, observation_size), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(network, example, check_trace=False, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path
