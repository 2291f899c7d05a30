"""L2: bar sources, OHLCV validation, feature datasets, splits and scalers fitted on train only."""
