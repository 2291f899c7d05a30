"""Metric names: constants with a bounded set of tags (never run or order ids)."""

PAPER_EQUITY = "rsc.paper.equity"
PAPER_PNL = "rsc.paper.pnl"
PAPER_POSITION = "rsc.paper.position"
PAPER_ORDERS = "rsc.paper.orders"
PAPER_DECISION_LATENCY = "rsc.paper.decision_latency_ms"
PAPER_ERRORS = "rsc.paper.errors"
PAPER_DRAWDOWN = "rsc.paper.drawdown"
# Feature drift of live bars against the training window, tagged ``feature`` (the configured names).
PAPER_DRIFT_PSI = "rsc.paper.drift.psi"
PAPER_DRIFT_KS = "rsc.paper.drift.ks"
# The champion's live record against its backtest (rsc.paper.decay), tagged ``model_version``.
PAPER_DECAY_PSR = "rsc.paper.decay.psr"  # P(the live Sharpe's true value reaches the backtest's)
PAPER_DECAY_SHARPE = "rsc.paper.decay.sharpe"  # live, annualised, over monitor.decay_window bars
PAPER_DECAY_BACKTEST_SHARPE = "rsc.paper.decay.backtest_sharpe"
PAPER_DECAY_DRAWDOWN = "rsc.paper.decay.drawdown"

# Training progress, one point per RLlib iteration, tagged ``algorithm``.
TRAIN_EPISODE_RETURN = "rsc.train.episode_return"
TRAIN_THROUGHPUT = "rsc.train.env_steps_per_s"
TRAIN_VALIDATION = "rsc.train.validation"  # tagged ``metric`` (sharpe, total_return, ...)

# Service checks (not metrics): their state is what Datadog's service check monitors watch.
CHECKS = {
    "risk": "rsc.paper.risk",  # ok; critical once a kill switch has flattened and stopped the trader
    "model": "rsc.paper.model",  # ok; critical while decisions cannot be had (holding)
    "data": "rsc.paper.data",  # ok; warning while bars are stale (holding)
    "drift": "rsc.paper.drift",  # ok; warning while a feature's PSI is above monitor.drift_psi_alert
    "decay": "rsc.paper.decay",  # ok; warning while the live record is improbable under the backtest
}


def eval_metric(key: str) -> str:
    """Evaluation figures: ``rsc.eval.<key of metrics.json>`` (sharpe, max_drawdown, psr, ...), tagged by
    strategy; a bounded set, since the keys are the metric names of :mod:`rsc.core.metrics`."""
    return f"rsc.eval.{key}"


# Serving (rsc.serve): tags endpoint (route template), status_class (2xx/4xx/5xx), model_version.
SERVE_REQUESTS = "rsc.serve.requests"
SERVE_LATENCY = "rsc.serve.latency_ms"
SERVE_ERRORS = "rsc.serve.errors"  # 5xx responses
# Drift of the features the endpoint is asked about against the training rows, tagged ``feature`` (the
# model's feature names) and ``model_version``.
SERVE_DRIFT_PSI = "rsc.serve.drift.psi"
SERVE_DRIFT_KS = "rsc.serve.drift.ks"
SERVE_BATCH_SIZE = "rsc.serve.batch_size"  # observations per network call of @serve.batch (no request tags)
