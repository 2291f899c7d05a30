"""Where metrics go: DogStatsD (the Datadog agent), memory (tests, status), or nowhere."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, NamedTuple, Protocol

from datadog.dogstatsd import DogStatsd

Kind = Literal["gauge", "count", "histogram"]


class Metric(NamedTuple):
    name: str
    value: float
    kind: Kind = "gauge"
    tags: Mapping[str, str] = {}


class MetricsSink(Protocol):
    def send(self, metric: Metric) -> None: ...


class NullSink:
    def send(self, metric: Metric) -> None:
        pass


class MemorySink:
    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def send(self, metric: Metric) -> None:
        self.metrics.append(metric)


class DogStatsdSink:
    """UDP DogStatsD packets; with no agent listening they are simply lost, never an error."""

    def __init__(self, host: str, port: int, constant_tags: Mapping[str, str]):
        # Without an agent the kernel answers "connection refused" per packet; that is expected, not news.
        logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
        self._client = DogStatsd(
            host=host,
            port=port,
            constant_tags=[f"{k}:{v}" for k, v in sorted(constant_tags.items())],
            disable_telemetry=True,
            disable_buffering=True,
        )

    def send(self, metric: Metric) -> None:
        tags = [f"{k}:{v}" for k, v in sorted(metric.tags.items())]
        if metric.kind == "count":
            self._client.increment(metric.name, metric.value, tags=tags)
        elif metric.kind == "histogram":
            self._client.histogram(metric.name, metric.value, tags=tags)
        else:
            self._client.gauge(metric.name, metric.value, tags=tags)

    def close(self) -> None:
        self._client.close_socket()
