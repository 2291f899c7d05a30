"""L2: the only package that imports ``datadog``: metric sinks and metric-name constants."""

from rsc.monitor.sink import DogStatsdSink, MemorySink, Metric, MetricsSink, NullSink

__all__ = ["DogStatsdSink", "MemorySink", "Metric", "MetricsSink", "NullSink"]
