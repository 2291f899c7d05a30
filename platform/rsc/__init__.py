"""ReinforceStrategyCreator."""
