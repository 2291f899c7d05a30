"""L1: the Gymnasium shell over ``rsc.core``; registered as ``rsc/Trading-v0``."""

import gymnasium as gym

from rsc.env.rollout import greedy_rollout
from rsc.env.trading import ENV_ID, MarketArrays, TradingEnv

if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point="rsc.env.trading:TradingEnv")

__all__ = ["ENV_ID", "MarketArrays", "TradingEnv", "greedy_rollout"]
