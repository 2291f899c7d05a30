"""Canonical column names and dtypes: the only place these names are spelled."""

from __future__ import annotations

TIMESTAMP = "timestamp"
SYMBOL = "symbol"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"

PRICE_COLUMNS: tuple[str, ...] = (OPEN, HIGH, LOW, CLOSE)
OHLCV_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, VOLUME)
BAR_COLUMNS: tuple[str, ...] = (TIMESTAMP, *OHLCV_COLUMNS)

# Name of the split part a row belongs to, and its values.
PART = "part"
TRADABLE = "tradable"  # aligned portfolio rows: False on a bar the symbol did not trade (forward-filled)
TRAIN, VALIDATION, TEST = "train", "validation", "test"
PARTS: tuple[str, ...] = (TRAIN, VALIDATION, TEST)
HOLDOUT = "holdout"  # the last split.holdout_bars bars, after the test part; no selection reads them

FLOAT_DTYPE = "float64"

# Layout of an exported policy folder (written by train, read by evaluate, registry and serve).
NETWORK_FILE = "network.pt"  # TorchScript: observations [B, D] -> greedy actions [B] (or [B, d])
DRIFT_REFERENCE_FILE = "drift_reference.json"  # a sample of the scaled training rows (endpoint drift)
POLICY_FILE = "policy.json"  # the policy contract, rsc.core.policy_spec.PolicySpec
WALK_FORWARD_FILE = "walk_forward.parquet"  # under tune/: per candidate and fold, metrics and choice
CHECKPOINT_DIR = "checkpoint"  # RLlib checkpoint of the best iteration
