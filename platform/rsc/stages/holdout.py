"""The final holdout: the last ``split.holdout_bars`` bars, which no selection touches.

Tune, walk-forward, the best-checkpoint choice and the test-period gate all stop before it, so its
figures are the one look at data nothing was chosen on. That is only true the first time: every model
evaluated on a holdout uses it up a little (a quant who retrains until the holdout looks good has
turned it into a validation set). The evaluate stage therefore counts, per universe, bar size and
holdout, every run that was ever evaluated on bars of it (``<storage.root>/holdouts/<universe>-<bar
size>/``, one file per run), and the report and the gate's record say "this holdout has been used by N
models".
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pandas as pd

from rsc.config import Settings
from rsc.config.lineage import universe_label
from rsc.config.settings import EnvSettings
from rsc.core.artifacts import Scaler
from rsc.core.schema import HOLDOUT, PART, TIMESTAMP
from rsc.env import MarketArrays, TradingEnv
from rsc.evaluate import benchmarks
from rsc.evaluate.backtest import backtest, backtest_metrics, backtest_policy
from rsc.registry.policy import Policy
from rsc.storage import Storage, join

log = logging.getLogger(__name__)

FIGURES = ("sharpe", "total_return", "max_drawdown")


def ledger_uri(cfg: Settings) -> str:
    """The uses of this universe's holdouts, one file per run, shared by every run on the storage root."""
    return join(cfg.storage.root, "holdouts", f"{universe_label(cfg.data.symbols)}-{cfg.frequency}")


def record_use(storage: Storage, ledger: str, window: tuple[str, str], run_root: str) -> int:
    """Record ``run_root`` as evaluated on ``window`` (first, last date) and count the runs evaluated on
    bars of it: any whose holdout overlaps it, since a holdout that moves with the data is still the
    same bars. One file per run: concurrent runs never write the same file; re-evaluating a run
    replaces its own entry."""
    name = hashlib.sha256(run_root.encode()).hexdigest()[:16] + ".json"
    storage.write_json(join(ledger, name), {"run_root": run_root, "start": window[0], "end": window[1]})
    uses = 0
    for uri in storage.list_files(ledger):
        entry = storage.read_json(uri)
        uses += entry["start"] <= window[1] and entry["end"] >= window[0]
    return uses


def evaluate_holdout(
    cfg: Settings,
    storage: Storage,
    own: pd.DataFrame,
    scaler: Scaler,
    env: EnvSettings,
    policy: Policy,
    periods_per_year: float,
) -> dict[str, Any]:
    """The policy and buy-and-hold on the holdout, and how many models have now been evaluated on it.

    Returns ``{}`` when the split has no holdout (``split.holdout_bars`` unset).
    """
    if PART not in own.columns or not (own[PART] == HOLDOUT).any():
        return {}
    market = MarketArrays.from_frame(own, scaler, HOLDOUT, env.window)
    trading = TradingEnv(market, env, mode="eval")
    run = backtest_policy(trading, policy.actor())
    rows = own.sort_values(TIMESTAMP)
    rows = rows[rows[TIMESTAMP].isin(run.timestamps)]
    held = backtest(
        benchmarks.buy_and_hold(len(rows)),
        rows["open" if env.fill == "next_open" else "close"].to_numpy(float),
        rows["close"].to_numpy(float),
        trading.costs,
        env.initial_cash,
        rows[TIMESTAMP].to_numpy(),
        rows["high"].to_numpy(float),
        rows["low"].to_numpy(float),
    )
    settings = cfg.evaluate
    figures = {
        name: {
            key: value
            for key, value in backtest_metrics(
                result, periods_per_year, settings.risk_free_rate, settings.min_periods
            ).items()
            if key in FIGURES
        }
        for name, result in (("policy", run), ("buy_and_hold", held))
    }
    first, last = str(run.timestamps[0])[:10], str(run.timestamps[-1])[:10]
    window = f"{first}..{last}"
    uses = record_use(storage, ledger_uri(cfg), (first, last), cfg.run_root)
    log.info("holdout %s: policy Sharpe %.3f; used by %d model(s)", window, figures["policy"]["sharpe"], uses)
    return {"window": window, "bars": len(run.timestamps), "models_evaluated": uses, **figures}
