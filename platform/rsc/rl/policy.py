"""Acting with a trained RLModule: greedy actions, and the export of that path for serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule


class GreedyActions(torch.nn.Module):
    """observation batch ``[B, D]`` -> greedy actions: ``[B]`` indices or ``[B, d]`` continuous values.

    PPO/APPO/SAC modules return distribution inputs (the deterministic action of the module's own
    inference distribution is taken: argmax for categorical, the squashed mean for SAC); DQN modules
    return the argmax of their Q-values as ``actions``.
    """

    def __init__(self, module: RLModule):
        super().__init__()
        self.module = module
        self.distribution = module.get_inference_action_dist_cls()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.module.forward_inference({Columns.OBS: obs})
        if Columns.ACTIONS in out:
            return out[Columns.ACTIONS]
        inputs = out[Columns.ACTION_DIST_INPUTS]
        return self.distribution.from_logits(inputs).to_deterministic().sample()


def greedy_actor(module: RLModule) -> Callable[[np.ndarray], int | np.ndarray]:
    """observation ``[D]`` -> the module's greedy action (an index, or a ``[d]`` array)."""
    network = GreedyActions(module).eval()

    def act(obs: np.ndarray):
        with torch.no_grad():
            action = network(torch.from_numpy(np.asarray(obs, dtype=np.float32)[None]))[0]
        return int(action) if action.ndim == 0 else action.numpy()

    return act


def export_network(module: RLModule, observation_size: int, path: Path) -> Path:
    """TorchScript of the greedy-action path: loads with ``torch.jit.load``, no RLlib needed."""
    network = GreedyActions(module).eval()
    example = torch.zeros((2, observation_size), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(network, example, check_trace=False, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path
