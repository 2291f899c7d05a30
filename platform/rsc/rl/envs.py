"""The env creators RLlib calls in every env runner: ``env_config`` (plain data) -> TradingEnv; a
UniverseEnv (one TradingEnv per symbol, an episode per symbol) when the dataset holds several symbols;
PortfolioEnv when ``env.kind`` is ``portfolio``.

``env_config`` carries URIs and settings, never arrays, so Tune's experiment state stays small; each
env runner loads the dataset once (cached per process). S3 credentials are deliberately not part of it
(it is written to disk by Tune): runners take them from the usual AWS variables or roles.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ray.tune.registry import register_env

from rsc.config.settings import EnvSettings, StorageSettings
from rsc.core.schema import SYMBOL
from rsc.env import ENV_ID, PORTFOLIO_ENV_ID, MarketArrays, PanelArrays, PortfolioEnv, TradingEnv
from rsc.env.universe import UniverseEnv
from rsc.storage import Storage
from rsc.storage.layout import read_scaler


def env_config(
    dataset_uri: str,
    scaler_uri: str,
    part: str,
    env: EnvSettings,
    storage: StorageSettings | None = None,
    mode: str = "train",
    eval_every: int = 1,
    risk_free_rate: float = 0.0,
) -> dict[str, Any]:
    """The plain-data ``env_config`` RLlib ships to env runners.

    Args:
        eval_every: iterations between validation backtests (read by the validation callback).
        risk_free_rate: yearly rate of the validation Sharpe ratio (the HPO metric) and of the
            differential-Sharpe reward, as in the evaluation (``evaluate.risk_free_rate``).
    """
    return {
        "dataset_uri": dataset_uri,
        "scaler_uri": scaler_uri,
        "part": part,
        "mode": mode,
        "env": env.model_dump(mode="json"),
        "s3_endpoint_url": storage.s3_endpoint_url if storage else None,
        "s3_region": storage.s3_region if storage else None,
        "eval_every": eval_every,
        "risk_free_rate": risk_free_rate,
    }


@cache
def _market(
    dataset_uri: str,
    scaler_uri: str,
    part: str,
    window: int,
    endpoint: str | None,
    region: str | None,
    kind: str = "single",
) -> MarketArrays | PanelArrays | dict[str, MarketArrays]:
    """The env's arrays: a panel (portfolio), one symbol's arrays, or each symbol's (a universe)."""
    storage = Storage(s3_endpoint_url=endpoint, s3_region=region)
    frame = storage.read_dataset(dataset_uri)
    scaler = read_scaler(storage, scaler_uri)
    if kind == "portfolio":
        return PanelArrays.from_frame(frame, scaler, part, window)
    if SYMBOL in frame.columns and frame[SYMBOL].nunique() > 1:
        markets = {}
        for symbol, rows in frame.groupby(SYMBOL, sort=True):
            try:
                markets[str(symbol)] = MarketArrays.from_frame(rows, scaler, part, window)
            except ValueError as error:  # one symbol of the universe is short of this part
                raise ValueError(f"symbol {symbol}: {error}") from error
        return markets
    return MarketArrays.from_frame(frame, scaler, part, window)


def make_env(config: dict[str, Any]) -> TradingEnv | PortfolioEnv | UniverseEnv:
    """Convert ``env_config`` once into typed settings and preloaded arrays (the env its kind names)."""
    settings = EnvSettings.model_validate(config["env"])
    market = _market(
        config["dataset_uri"],
        config["scaler_uri"],
        config["part"],
        settings.window,
        config.get("s3_endpoint_url"),
        config.get("s3_region"),
        settings.kind,
    )
    if settings.kind == "portfolio":
        env = PortfolioEnv
    else:
        env = UniverseEnv if isinstance(market, dict) else TradingEnv
    return env(
        market, settings, mode=config.get("mode", "train"), risk_free_rate=config.get("risk_free_rate", 0.0)
    )


def env_id(config: dict[str, Any], default: str = ENV_ID) -> str:
    """The registered env an ``env_config`` runs in: the portfolio env for ``env.kind=portfolio``."""
    return PORTFOLIO_ENV_ID if config.get("env", {}).get("kind") == "portfolio" else default


def observation_size_of(config: dict[str, Any]) -> int:
    """Length of the observation the env of ``env_config`` hands out (what the network is exported for)."""
    return int(make_env({**config, "mode": "eval"}).observation_space.shape[0])


def register_envs() -> None:
    register_env(ENV_ID, make_env)
    register_env(PORTFOLIO_ENV_ID, make_env)
