"""Drift of what the endpoint is asked about: the features of recent requests against the training rows.

The paper trader measures drift on the bars it trades; this measures it on the requests the endpoint
actually answers, whoever sends them. Each answered single-asset request leaves the latest row of its
(scaled) feature window in a bounded buffer, an append and nothing more on the request path; a
background task of the replica compares the buffer with the reference rows stored with the model
(``drift_reference.json``, a sample of the training rows scaled alike,
:func:`rsc.monitor.drift.write_reference`) every ``serve.drift_every_s``
seconds, off the request path, and sends PSI and KS per feature as DogStatsD gauges.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rsc.monitor.drift import Drift, feature_drift

MIN_REQUESTS = 30  # fewer rows than this give no measurement (PSI over ten bins needs a sample)


class EndpointDrift:
    """The latest ``window`` requests' feature rows of one model version, and their drift."""

    def __init__(self, names: list[str], reference: np.ndarray, window: int, bins: int):
        self.names, self.reference, self.bins = names, reference, bins
        self.rows: deque[np.ndarray] = deque(maxlen=window)

    def observe(self, row: np.ndarray) -> None:
        """One request's latest feature row (a copy; non-finite rows are skipped)."""
        if np.isfinite(row).all():
            self.rows.append(np.array(row, dtype=np.float64))

    def measure(self) -> list[Drift] | None:
        """PSI and KS per feature over the buffered rows, or None while there are too few."""
        if len(self.rows) < min(MIN_REQUESTS, self.rows.maxlen or MIN_REQUESTS):
            return None
        return feature_drift(self.reference, np.stack(list(self.rows)), self.names, self.bins)
