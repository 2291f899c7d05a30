"""``rsc.train.*``: one point per training iteration, from the row the training loop reports.

The row is :func:`rsc.rl.train.iteration_row`'s: ``iteration``, ``episode_return_mean`` (or None),
``env_steps`` (lifetime env steps sampled, or None) and ``eval/<metric>`` validation figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from rsc.monitor import names
from rsc.monitor.sink import Metric, MetricsSink

VALIDATION_PREFIX = "eval/"


class TrainMetrics:
    """An ``on_iteration`` callback: episode return, env steps per second and validation figures.

    Throughput is the change in lifetime env steps over the wall time between two iterations, so
    the first iteration after a (re)start has none (a resumed run's lifetime count includes the
    steps of the process before it).
    """

    def __init__(
        self, sink: MetricsSink, tags: Mapping[str, str], clock: Callable[[], float] = time.monotonic
    ):
        self.sink, self.tags, self.clock = sink, dict(tags), clock
        self._last: tuple[float, float] | None = None  # (lifetime env steps, clock) at the last iteration

    def __call__(self, row: Mapping[str, Any]) -> None:
        now = self.clock()
        episode_return = row.get("episode_return_mean")
        if episode_return is not None:
            self.sink.send(Metric(names.TRAIN_EPISODE_RETURN, float(episode_return), "gauge", self.tags))
        steps = row.get("env_steps")
        if steps is not None:
            if self._last is not None and now > self._last[1]:
                rate = (float(steps) - self._last[0]) / (now - self._last[1])
                self.sink.send(Metric(names.TRAIN_THROUGHPUT, rate, "gauge", self.tags))
            self._last = (float(steps), now)
        for key, value in row.items():
            if key.startswith(VALIDATION_PREFIX) and isinstance(value, int | float) and math.isfinite(value):
                metric = key.removeprefix(VALIDATION_PREFIX)
                tags = {**self.tags, "metric": metric}
                self.sink.send(Metric(names.TRAIN_VALIDATION, float(value), "gauge", tags))
