"""L1: the Gymnasium shells over ``rsc.core``: ``rsc/Trading-v0`` and ``rsc/Portfolio-v0``."""

import gymnasium as gym

from rsc.env.market import MarketArrays, PanelArrays
from rsc.env.portfolio import PORTFOLIO_ENV_ID, PortfolioEnv
from rsc.env.rollout import greedy_rollout
from rsc.env.trading import ENV_ID, TradingEnv

for _id, _entry in (
    (ENV_ID, "rsc.env.trading:TradingEnv"),
    (PORTFOLIO_ENV_ID, "rsc.env.portfolio:PortfolioEnv"),
):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry)

__all__ = [
    "ENV_ID",
    "PORTFOLIO_ENV_ID",
    "MarketArrays",
    "PanelArrays",
    "PortfolioEnv",
    "TradingEnv",
    "greedy_rollout",
]
