"""The champion on the challenger's test window: one comparison, one window.

A champion's own test figure comes from its own (older) test period, so comparing it with a challenger's
says nothing. The gate instead scores the champion on exactly the challenger's test bars, with the
challenger's costs, fill and annualisation, through the champion's own indicators, scaler and network,
and compares the two figures there. When the champion's test window and evaluation conditions are the
challenger's already, its recorded figure is that number and is used as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from rsc.config import Settings
from rsc.config.settings import EnvSettings, EvaluateSettings
from rsc.core import metrics
from rsc.core.features import Bars, compute_features
from rsc.core.schema import OHLCV_COLUMNS, PART, SYMBOL, TEST, TIMESTAMP, TRAIN
from rsc.env import MarketArrays, TradingEnv
from rsc.evaluate.backtest import backtest_metrics, backtest_policy
from rsc.registry.lineage import TEST_WINDOW_TAG, UNIVERSE_TAG
from rsc.registry.policy import Policy
from rsc.registry.promotion import EVALUATION_TAG, Rescore
from rsc.registry.tracking import load_version, model_version, run_settings
from rsc.storage import Storage
from rsc.storage.layout import RunLayout

# The settings that make two test figures comparable, beside the window itself.
COST_FIELDS = ("fill", "commission_bps", "slippage_bps", "spread_factor", "borrow_bps_per_year")


def conditions(env: EnvSettings, evaluate: EvaluateSettings) -> str:
    """The evaluation conditions as a stable string (stored on each version, compared by the gate)."""
    values = {field: getattr(env, field) for field in COST_FIELDS}
    values |= {
        "risk_free_rate": evaluate.risk_free_rate,
        "periods_per_year": evaluate.periods_per_year,
        "min_periods": evaluate.min_periods,
    }
    return json.dumps(values, sort_keys=True)


def score_on_window(
    policy: Policy,
    frame: pd.DataFrame,
    symbol: str | None,
    window: tuple[str, str],
    env: EnvSettings,
    evaluate: EvaluateSettings,
    metric: str,
) -> float:
    """``policy``'s ``metric`` over the bars of ``window`` (dates, inclusive) in ``frame``.

    Args:
        frame: bars (OHLCV) up to at least the window's end, with enough history before it for the
            policy's indicators and observation window.
        env: the evaluation conditions to apply (costs and fill); the policy keeps its own window,
            positions and limits.
    """
    start, end = pd.Timestamp(window[0]), pd.Timestamp(window[1]) + pd.Timedelta(days=1)
    own = frame[frame[SYMBOL] == symbol] if symbol is not None and SYMBOL in frame.columns else frame
    own = own[own[TIMESTAMP] < end].sort_values(TIMESTAMP).reset_index(drop=True)
    spec = policy.spec
    values = compute_features(
        Bars.from_columns({c: own[c].to_numpy(np.float64) for c in OHLCV_COLUMNS}), spec.refs
    )
    rows = own[[TIMESTAMP, *OHLCV_COLUMNS]].copy()
    rows[list(spec.scaler.columns)] = values
    rows = rows[~np.isnan(values).any(axis=1)].reset_index(drop=True)
    rows[PART] = np.where(rows[TIMESTAMP] >= start, TEST, TRAIN)
    if not (rows[PART] == TEST).any():
        raise ValueError(f"no bars of {symbol or 'the data'} in the window {window[0]}..{window[1]}")
    trained = spec.env or {
        **env.model_dump(),
        "window": spec.observation.window,
        "action": spec.action.kind,
        "positions": list(spec.action.positions),
    }
    own_env = {**trained, **{field: getattr(env, field) for field in COST_FIELDS}}
    settings = EnvSettings.model_validate(own_env)
    market = MarketArrays.from_frame(rows, spec.scaler.model_dump(), TEST, settings.window)
    run = backtest_policy(TradingEnv(market, settings, mode="eval"), policy.actor())
    history = own[TIMESTAMP].to_numpy()
    periods = evaluate.periods_per_year or metrics.infer_periods_per_year(history).periods_per_year
    return float(backtest_metrics(run, periods, evaluate.risk_free_rate, evaluate.min_periods)[metric])


def window_rescorer(
    frame: pd.DataFrame,
    symbol: str | None,
    window: tuple[str, str],
    env: EnvSettings,
    evaluate: EvaluateSettings,
    metric: str,
    load: Callable[[str, int], Policy],
) -> Rescore:
    """A :data:`Rescore` over this window and these conditions (``load`` fetches a version's policy)."""

    def rescore(name: str, version: int) -> float:
        return score_on_window(load(name, version), frame, symbol, window, env, evaluate, metric)

    return rescore


def rescorer_for_version(cfg: Settings, name: str, version: int) -> Rescore | None:
    """The rescorer of a registered version's own test window, for a gate run after the fact (``rsc
    registry promote``): its data is the split beside its evaluation, its evaluation settings those its
    run logged; None when the split is gone."""
    found = model_version(name, version)
    window, evaluation = found.tags.get(TEST_WINDOW_TAG), found.run_tags.get(EVALUATION_TAG)
    if not window or not evaluation:
        return None
    storage = Storage.from_settings(cfg.storage)
    split = RunLayout(evaluation.rsplit("/", 2)[0]).split
    if not storage.exists(split):
        return None
    frame = storage.read_dataset(split)
    universe = found.tags.get(UNIVERSE_TAG, "").split(",")
    symbol = (universe[0] if len(universe) == 1 else cfg.data.symbols[0]) if SYMBOL in frame.columns else None
    spec = load_version(name, version).spec
    env = EnvSettings.model_validate(spec.env) if spec.env else cfg.env
    first, last = window.split("..")
    logged = run_settings(found.run_id) or {}  # the conditions the version's own figures were made under
    evaluate = EvaluateSettings.model_validate(logged["evaluate"]) if "evaluate" in logged else cfg.evaluate
    return window_rescorer(
        frame, symbol, (first, last), env, evaluate, cfg.registry.promotion_metric, load_version
    )
