"""Acting with a trained RLModule: greedy actions, and the export of that path for serving.

A feed-forward module is exported as ``observations [B, D] -> actions``; a recurrent one (RLlib's
``use_lstm``) as ``(observations [B, D], state ...) -> (actions, state ...)``, one bar at a time, the
state tensors batch-first (``[B, layers, cell]``) in the sorted order of the module's state keys. The
caller carries the state from bar to bar (the policy contract's ``recurrent`` section says its shape).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule


def state_shape(module: RLModule) -> dict[str, tuple[int, ...]]:
    """The module's recurrent state, key -> shape of one sample (empty for a feed-forward module)."""
    initial = module.get_initial_state() or {}
    return {key: tuple(initial[key].shape) for key in sorted(initial)}


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

    def greedy(self, out: dict) -> torch.Tensor:
        if Columns.ACTIONS in out:
            return out[Columns.ACTIONS]
        return self.distribution.from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic().sample()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.greedy(self.module.forward_inference({Columns.OBS: obs}))


class RecurrentGreedyActions(GreedyActions):
    """``(observations [B, D], state tensors [B, ...] in sorted key order)`` -> ``(actions, new state)``:
    one step of a recurrent module (a time axis of length 1 in and out)."""

    def __init__(self, module: RLModule):
        super().__init__(module)
        self.keys = sorted(module.get_initial_state())

    def forward(self, obs: torch.Tensor, *state: torch.Tensor):
        batch = {Columns.OBS: obs[:, None], Columns.STATE_IN: dict(zip(self.keys, state, strict=True))}
        out = self.module.forward_inference(batch)
        step = {key: value[:, 0] for key, value in out.items() if key != Columns.STATE_OUT}
        return (self.greedy(step), *(out[Columns.STATE_OUT][key] for key in self.keys))


def greedy_actor(module: RLModule) -> Callable[[np.ndarray], int | np.ndarray]:
    """observation ``[D]`` -> the module's greedy action (an index, or a ``[d]`` array).

    For a recurrent module the actor carries the state from call to call, starting from the module's
    initial state: make one actor per episode.
    """
    shapes = state_shape(module)
    network = (RecurrentGreedyActions(module) if shapes else GreedyActions(module)).eval()
    state = [torch.zeros((1, *shape)) for shape in shapes.values()]

    def act(obs: np.ndarray):
        nonlocal state
        with torch.no_grad():
            observation = torch.from_numpy(np.asarray(obs, dtype=np.float32)[None])
            if shapes:
                action, *state = network(observation, *state)
                action = action[0]
            else:
                action = network(observation)[0]
        return int(action) if action.ndim == 0 else action.numpy()

    return act


def export_network(module: RLModule, observation_size: int, path: Path) -> Path:
    """TorchScript of the greedy-action path: loads with ``torch.jit.load``, no RLlib needed."""
    shapes = state_shape(module)
    network = (RecurrentGreedyActions(module) if shapes else GreedyActions(module)).eval()
    example = (
        torch.zeros((2, observation_size), dtype=torch.float32),
        *(torch.zeros((2, *shape), dtype=torch.float32) for shape in shapes.values()),
    )
    with torch.no_grad():
        traced = torch.jit.trace(network, example, check_trace=False, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path
