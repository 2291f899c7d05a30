"""Where metrics go: DogStatsD (the Datadog agent), memory (tests, status), or nowhere.

A sink takes three kinds of item through its one method: a :class:`Metric` (gauge, count,
histogram), a :class:`ServiceCheck` (the state of a named check: the risk limits, the model, the
data) and an :class:`Event` (something that happened: a risk breach, a kill switch, a recovery).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, NamedTuple, Protocol

from datadog.dogstatsd import DogStatsd

from rsc.config.settings import MonitorSettings

Kind = Literal["gauge", "count", "histogram"]
CheckStatus = Literal["ok", "warning", "critical", "unknown"]
AlertType = Literal["info", "success", "warning", "error"]

# DogStatsD's service check status codes.
CHECK_CODES: dict[str, int] = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


class Metric(NamedTuple):
    name: str
    value: float
    kind: Kind = "gauge"
    tags: Mapping[str, str] = {}


class ServiceCheck(NamedTuple):
    """The current state of a check; Datadog alerts on it with a service check monitor."""

    name: str
    status: CheckStatus
    message: str = ""
    tags: Mapping[str, str] = {}


class Event(NamedTuple):
    """A dated fact for the event stream; ``key`` groups related events (Datadog's aggregation key)."""

    title: str
    text: str
    alert_type: AlertType = "info"
    tags: Mapping[str, str] = {}
    key: str | None = None


Item = Metric | ServiceCheck | Event


class MetricsSink(Protocol):
    def send(self, item: Item) -> None: ...


class NullSink:
    def send(self, item: Item) -> None:
        pass


class MemorySink:
    """Keeps what was sent, by kind (tests, and ``rsc paper status`` of an in-process run)."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []
        self.checks: list[ServiceCheck] = []
        self.events: list[Event] = []

    def send(self, item: Item) -> None:
        if isinstance(item, ServiceCheck):
            self.checks.append(item)
        elif isinstance(item, Event):
            self.events.append(item)
        else:
            self.metrics.append(item)


def _tags(tags: Mapping[str, str]) -> list[str]:
    return [f"{k}:{v}" for k, v in sorted(tags.items())]


class DogStatsdSink:
    """UDP DogStatsD packets; with no agent listening they are simply lost, never an error."""

    def __init__(self, host: str, port: int, constant_tags: Mapping[str, str]):
        # Without an agent the kernel answers "connection refused" per packet; that is expected, not news.
        logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
        self._client = DogStatsd(
            host=host,
            port=port,
            constant_tags=_tags(constant_tags),
            disable_telemetry=True,
            disable_buffering=True,
        )

    def send(self, item: Item) -> None:
        tags = _tags(item.tags)
        if isinstance(item, ServiceCheck):
            self._client.service_check(item.name, CHECK_CODES[item.status], tags=tags, message=item.message)
        elif isinstance(item, Event):
            self._client.event(
                item.title, item.text, alert_type=item.alert_type, aggregation_key=item.key, tags=tags
            )
        elif item.kind == "count":
            self._client.increment(item.name, item.value, tags=tags)
        elif item.kind == "histogram":
            self._client.histogram(item.name, item.value, tags=tags)
        else:
            self._client.gauge(item.name, item.value, tags=tags)

    def close(self) -> None:
        self._client.close_socket()


def sink_from_settings(settings: MonitorSettings, service: str) -> MetricsSink:
    """The configured sink: DogStatsD tagged ``env`` and ``service``, or nothing when disabled."""
    if not settings.enabled:
        return NullSink()
    tags = {"env": settings.environment, "service": service}
    return DogStatsdSink(settings.statsd_host, settings.statsd_port, tags)
