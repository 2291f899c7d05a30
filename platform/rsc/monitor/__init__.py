"""L2: the only package that imports ``datadog``: sinks, metric-name constants, drift statistics."""

from rsc.monitor.sink import (
    DogStatsdSink,
    Event,
    MemorySink,
    Metric,
    MetricsSink,
    NullSink,
    ServiceCheck,
    sink_from_settings,
)

__all__ = [
    "DogStatsdSink",
    "Event",
    "MemorySink",
    "Metric",
    "MetricsSink",
    "NullSink",
    "ServiceCheck",
    "sink_from_settings",
]
