"""Observation rows handed out in blocks: every observation its own memory, without a copy per step."""

from __future__ import annotations

import copy

import numpy as np

OBSERVATION_BLOCK = 64  # observation rows copied out at a time


class ObservationBlocks:
    """Mixin of the envs whose observation at bar ``t`` is a precomputed row plus a few state slots.

    The env sets ``_window_rows`` (``[T, width]`` float32, the state slots zero) and calls
    ``_copy_block(t)`` at the start of an episode and whenever ``t - _block_start`` reaches
    ``OBSERVATION_BLOCK``. Its observation at ``t`` is ``_rows[t - _block_start]``, a view of the block,
    with the state slots written through ``_slots``, the block as one flat float32 memoryview (an item
    write there is several times cheaper than numpy's).

    RLlib keeps every observation, so each must be its own memory; one copy of 64 rows costs far less
    than 64 copies of one. ``t`` only grows within an episode and each episode starts a new block, so
    no row is handed out twice. A kept observation keeps its whole block alive (64 rows, about 77 KB
    with a 30-bar window of 10 features).
    """

    _window_rows: np.ndarray

    def _copy_block(self, t: int) -> None:
        """Copy the rows of bars ``t .. t + OBSERVATION_BLOCK - 1`` into a fresh block."""
        self._block = self._window_rows[t : t + OBSERVATION_BLOCK].copy()
        self._block_start = t
        self._view_block()

    def _view_block(self) -> None:
        self._rows = list(self._block)  # the row views, made at once (indexing a list is cheaper)
        self._slots = memoryview(self._block).cast("B").cast("f")

    def __copy__(self):
        # A shallow copy would share the block (and so the observations it hands out) and the reward
        # state with this env; a copy of an env is a full copy.
        return copy.deepcopy(self)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_rows"], state["_slots"]  # views of the block: pickled, they would be copies
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._view_block()
