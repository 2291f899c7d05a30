"""Walk-forward folds: no test timestamp reaches its fold's training or validation rows, purge, embargo,
scalers fitted on each fold's training rows only, and the split stage's folds.json."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsc.config.settings import WalkForwardSettings
from rsc.core.schema import PART, TEST, TRAIN, VALIDATION
from rsc.data.splits import assign_fold, fold_summary, purge_and_embargo, time_axis, walk_forward
from rsc.stages import features, ingest, split
from rsc.storage import Storage
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars

layouts = st.builds(
    WalkForwardSettings,
    folds=st.integers(1, 5),
    mode=st.sampled_from(["expanding", "rolling"]),
    train_bars=st.integers(5, 80),
    validation_bars=st.integers(4, 30),
    test_bars=st.integers(1, 30),
    label_horizon=st.integers(0, 3),
    embargo_bars=st.integers(0, 10),
)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, extra=st.integers(0, 60))
def test_no_test_bar_reaches_its_folds_training_or_validation(layout, extra):
    n = layout.train_bars + layout.validation_bars + layout.folds * layout.test_bars
    n += (layout.folds - 1) * layout.embargo_bars + extra
    folds = walk_forward(n, layout)
    assert len(folds) == layout.folds
    h = layout.label_horizon
    for fold in folds:
        test = set(fold.test.tolist())
        assert not test & set(fold.train.tolist()) and not test & set(fold.validation.tolist())
        # purge: no training label [t, t + h] reaches validation or test; no validation label reaches test
        assert fold.train.max() + h < fold.validation.min()
        assert fold.validation.max() + h < fold.test.min()
        assert len(fold.test) == layout.test_bars
        if layout.mode == "rolling":
            assert len(fold.train) == layout.train_bars - h
        else:
            assert fold.train[0] == 0 and len(fold.train) >= layout.train_bars - h
    assert folds[-1].test[-1] == n - 1
    for earlier, later in itertools.pairwise(folds):
        # embargo: the bars right after a test window are in no other fold's test window
        assert later.test[0] - earlier.test[-1] - 1 == layout.embargo_bars


def test_purge_and_embargo_on_a_window_inside_the_history():
    """Where training rows follow an evaluation window (k-fold style), the embargo drops them."""
    candidates = np.arange(100)
    kept = purge_and_embargo(candidates, [(40, 50)], horizon=3, embargo=5)
    assert set(range(37, 55)).isdisjoint(kept.tolist())  # 37..39 purged, 40..49 test, 50..54 embargo
    assert kept.tolist() == [*range(37), *range(55, 100)]


def test_too_little_data_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3 folds \(expanding.*need at least 1018 bars; the data has 1000"):
        walk_forward(1000, WalkForwardSettings())


def multi_symbol_features(n: int = 300) -> pd.DataFrame:
    frames = [synthetic_bars(n, seed=i, symbol=s) for i, s in enumerate(["A", "B"])]
    frame = pd.concat(frames, ignore_index=True)
    frame["f"] = np.random.default_rng(0).normal(size=len(frame))
    return frame


def test_fold_rows_cover_every_symbol_and_scaler_uses_train_rows_only():
    frame = multi_symbol_features()
    layout = WalkForwardSettings(folds=2, train_bars=100, validation_bars=40, test_bars=50, embargo_bars=3)
    axis = time_axis(frame)
    fold = walk_forward(len(axis), layout)[0]
    summary = fold_summary(fold, axis, frame, ["f"])
    assert summary["rows"] == {TRAIN: 2 * len(fold.train), VALIDATION: 2 * len(fold.validation), TEST: 100}
    rows = assign_fold(frame, summary)
    train = rows[rows[PART] == TRAIN]
    assert summary["scaler"]["mean"] == pytest.approx([train["f"].mean()])
    assert summary["scaler"]["std"] == pytest.approx([train["f"].std(ddof=0)])
    # changing everything outside the training rows leaves the fold's scaler unchanged
    shocked = frame.copy()
    outside = shocked["timestamp"] > pd.Timestamp(summary[TRAIN][1])
    shocked.loc[outside, "f"] = 1e6
    assert fold_summary(fold, axis, shocked, ["f"])["scaler"] == summary["scaler"]
    stamps = rows.groupby(PART)["timestamp"]
    assert stamps.max()[TRAIN] < stamps.min()[VALIDATION] and stamps.max()[VALIDATION] < stamps.min()[TEST]


def test_split_stage_writes_folds_with_lineage(tmp_path):
    cfg = smoke_settings(
        tmp_path,
        "data.symbols=[SPX, GOOG]",
        "data.start=2009-01-01",
        "data.end=2013-03-01",
        "split.train_end=2011-06-30",
        "split.validation_end=2012-06-30",
        "split.walk_forward.folds=3",
        "split.walk_forward.train_bars=252",
        "split.walk_forward.test_bars=63",
        "split.walk_forward.validation_bars=63",
    )
    bars = ingest.run(cfg)
    feats = features.run(cfg, bars.bars_uri)
    result = split.run(cfg, feats.features_uri)
    storage = Storage()
    folds = storage.read_json(result.folds_uri)
    assert result.folds == 3 and folds["inputs"] == {"features": feats.sha256}
    assert storage.read_json(result.scaler_uri)["inputs"] == {"features": feats.sha256}
    frame = storage.read_dataset(feats.features_uri)
    last = folds["folds"][-1]
    assert last[TEST][1] == str(frame["timestamp"].max())
    for fold in folds["folds"]:
        rows = assign_fold(frame, fold)
        assert set(rows["symbol"]) == {"SPX", "GOOG"}
        test_stamps = set(rows.loc[rows[PART] == TEST, "timestamp"])
        assert test_stamps.isdisjoint(rows.loc[rows[PART] != TEST, "timestamp"])
        assert fold["scaler"]["columns"] == feats.columns
    assert storage.read_manifest(result.split_uri)["inputs"] == {"features": feats.sha256}
