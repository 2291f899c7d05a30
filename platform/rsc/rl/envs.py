"""The env creator RLlib calls in every env runner: ``env_config`` (plain data) -> TradingEnv."""

from __future__ import annotations

from functools import cache
from typing import Any

from ray.tune.registry import register_env

from rsc.config.settings import EnvSettings
from rsc.env import ENV_ID, MarketArrays, TradingEnv
from rsc.storage import Storage


def env_config(
    dataset_uri: str,
    scaler_uri: str,
    part: str,
    env: EnvSettings,
    s3_endpoint_url: str | None = None,
    mode: str = "train",
) -> dict[str, Any]:
    """The plain-data ``env_config`` RLlib ships to env runners (URIs, not arrays)."""
    return {
        "dataset_uri": dataset_uri,
        "scaler_uri": scaler_uri,
        "part": part,
        "mode": mode,
        "env": env.model_dump(mode="json"),
        "s3_endpoint_url": s3_endpoint_url,
    }


@cache
def _market(dataset_uri: str, scaler_uri: str, part: str, window: int, endpoint: str | None) -> MarketArrays:
    storage = Storage(s3_endpoint_url=endpoint)
    frame = storage.read_dataset(dataset_uri)
    return MarketArrays.from_frame(frame, storage.read_json(scaler_uri), part, window)


def make_env(config: dict[str, Any]) -> TradingEnv:
    """Convert ``env_config`` once into typed settings and preloaded arrays (cached per process)."""
    settings = EnvSettings.model_validate(config["env"])
    market = _market(
        config["dataset_uri"],
        config["scaler_uri"],
        config["part"],
        settings.window,
        config.get("s3_endpoint_url"),
    )
    return TradingEnv(market, settings, mode=config.get("mode", "train"))


def register_envs() -> None:
    register_env(ENV_ID, make_env)
