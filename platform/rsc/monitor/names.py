"""Metric names: constants with a bounded set of tags (never run or order ids)."""

PAPER_EQUITY = "rsc.paper.equity"
PAPER_PNL = "rsc.paper.pnl"
PAPER_POSITION = "rsc.paper.position"
PAPER_ORDERS = "rsc.paper.orders"
PAPER_DECISION_LATENCY = "rsc.paper.decision_latency_ms"
PAPER_ERRORS = "rsc.paper.errors"


def eval_metric(key: str) -> str:
    """Evaluation figures: ``rsc.eval.<key of metrics.json>`` (sharpe, max_drawdown, psr, ...), tagged by
    strategy; a bounded set, since the keys are the metric names of :mod:`rsc.core.metrics`."""
    return f"rsc.eval.{key}"


# Serving (rsc.serve): tags endpoint (route template), status_class (2xx/4xx/5xx), model_version.
SERVE_REQUESTS = "rsc.serve.requests"
SERVE_LATENCY = "rsc.serve.latency_ms"
SERVE_ERRORS = "rsc.serve.errors"  # 5xx responses
