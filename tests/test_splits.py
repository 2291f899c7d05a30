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
from rsc.core.schema import HOLDOUT, PART, TEST, TRAIN, VALIDATION
from rsc.data.splits import (
    assign_fold,
    assign_parts,
    fold_summary,
    purge_and_embargo,
    time_axis,
    walk_forward,
)
from rsc.stages import features, ingest, split
from rsc.storage import Storage
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars

layouts = st.builds(
    WalkForwardSettings,
    folds=st.integers(1, 6),
    mode=st.sampled_from(["expanding", "rolling"]),
    train_bars=st.one_of(st.none(), st.integers(5, 80)),
    validation_bars=st.one_of(st.none(), st.integers(24, 60)),
    label_horizon=st.integers(0, 3),
    embargo_bars=st.integers(0, 10),
)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, history=st.integers(150, 600), test=st.integers(0, 50))
def test_folds_tile_the_history_before_the_test_part(layout, history, test):
    try:
        folds = walk_forward(history + test, layout, history_end=history)
    except ValueError as error:  # too short: the message names what is needed
        assert "need at least" in str(error) and f"has {history}" in str(error)
        return
    assert len(folds) == layout.folds
    h = layout.label_horizon
    first_train = layout.train_bars or history // (layout.folds + 1)
    for fold in folds:
        # purge: no training label [t, t + h] reaches validation; no validation label reaches the test part
        assert fold.train.max() + h < fold.validation.min()
        assert fold.validation.max() < history and (test == 0 or fold.validation.max() + h < history)
        if layout.mode == "rolling":
            assert fold.train[0] == fold.validation[0] - first_train
        else:
            assert fold.train[0] == 0
    assert folds[0].validation[0] >= first_train  # the first training window gets any remainder
    if layout.mode == "expanding":
        assert len(folds[0].train) == folds[0].validation[0] - h
    for earlier, later in itertools.pairwise(folds):  # validation windows tile the history, oldest first
        assert later.validation[0] == earlier.validation[0] + (
            layout.validation_bars or len(earlier.validation)
        )
    assert folds[-1].validation[0] + len(folds[-1].validation) + (h if test else 0) == history


def test_demo_sized_history_gets_four_folds_from_the_start():
    """About eight years of daily bars: four validation windows, the first after ~1.6 years of training."""
    folds = walk_forward(2244, WalkForwardSettings(), history_end=1993, bars_per_year=252)
    assert len(folds) == 4
    assert [int(f.validation[0]) for f in folds] == [401, 799, 1197, 1595]
    assert all(len(f.validation) >= 397 for f in folds)


def test_purge_and_embargo_on_a_window_inside_the_history():
    """Where training rows follow an evaluation window (k-fold style), the embargo drops them."""
    candidates = np.arange(100)
    kept = purge_and_embargo(candidates, [(40, 50)], horizon=3, embargo=5)
    assert set(range(37, 55)).isdisjoint(kept.tolist())  # 37..39 purged, 40..49 test, 50..54 embargo
    assert kept.tolist() == [*range(37), *range(55, 100)]


def test_too_little_data_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"4 folds \(expanding\) need at least 87 bars before the test part .* has 80 \(about 0\.32 "
        r"years at 252 bars a year\): lower split.walk_forward.folds",
    ):
        walk_forward(100, WalkForwardSettings(), history_end=80, bars_per_year=252)


def multi_symbol_features(n: int = 300) -> pd.DataFrame:
    frames = [synthetic_bars(n, seed=i, symbol=s) for i, s in enumerate(["A", "B"])]
    frame = pd.concat(frames, ignore_index=True)
    frame["f"] = np.random.default_rng(0).normal(size=len(frame))
    return frame


def test_fold_rows_cover_every_symbol_and_scaler_uses_train_rows_only():
    frame = multi_symbol_features()
    layout = WalkForwardSettings(folds=2, train_bars=100, validation_bars=40, embargo_bars=3)
    axis = time_axis(frame)
    fold = walk_forward(len(axis), layout, history_end=250)[0]
    summary = fold_summary(fold, axis, frame, ["f"])
    assert summary["rows"] == {TRAIN: 2 * len(fold.train), VALIDATION: 2 * len(fold.validation)}
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
    assert stamps.max()[TRAIN] < stamps.min()[VALIDATION] and set(rows[PART]) == {TRAIN, VALIDATION}


def test_the_holdout_is_the_last_bars_of_every_symbol_after_the_test_part():
    bars = pd.concat([synthetic_bars(400, seed=i, symbol=s) for i, s in enumerate("AB")], ignore_index=True)
    axis = np.sort(bars["timestamp"].unique())
    train_end, validation_end = (pd.Timestamp(axis[k]).date() for k in (200, 300))
    frame = assign_parts(bars, train_end, validation_end, holdout_bars=40)
    held = frame[frame[PART] == HOLDOUT]
    assert len(held) == 2 * 40 and held["timestamp"].min() == axis[-40]
    assert frame.loc[frame[PART] == TEST, "timestamp"].max() < held["timestamp"].min()
    assert (assign_parts(bars, train_end, validation_end)[PART] != HOLDOUT).all()  # off by default
    with pytest.raises(ValueError, match=r"split\.holdout_bars=150 leaves no test part"):
        assign_parts(bars, train_end, validation_end, holdout_bars=150)


def test_split_stage_writes_folds_with_lineage(tmp_path):
    cfg = smoke_settings(
        tmp_path,
        "data.symbols=[SPX, GOOG]",
        "data.start=2009-01-01",
        "data.end=2013-03-01",
        "split.train_end=2011-06-30",
        "split.validation_end=2012-06-30",
        "split.walk_forward.folds=3",
    )
    bars = ingest.run(cfg)
    feats = features.run(cfg, bars.bars_uri)
    result = split.run(cfg, feats.features_uri)
    storage = Storage()
    folds = storage.read_json(result.folds_uri)
    assert result.folds == 3 and folds["inputs"] == {"features": feats.sha256}
    assert storage.read_json(result.scaler_uri)["inputs"] == {"features": feats.sha256}
    frame = storage.read_dataset(feats.features_uri)
    history = frame[frame["timestamp"] <= "2012-06-30"]["timestamp"]
    assert folds["folds"][0][TRAIN][0] == str(history.min())  # laid from the start of the data
    assert folds["folds"][-1][VALIDATION][1] <= str(history.max())  # and never into the test part
    assert folds["folds"][-1][VALIDATION][1] >= str(history.sort_values().iloc[-3])
    for fold in folds["folds"]:
        rows = assign_fold(frame, fold)
        assert set(rows["symbol"]) == {"SPX", "GOOG"} and fold[TEST] is None
        assert (
            rows.loc[rows[PART] == TRAIN, "timestamp"].max()
            < rows.loc[rows[PART] == VALIDATION, "timestamp"].min()
        )
        assert fold["scaler"]["columns"] == feats.columns
    assert storage.read_manifest(result.split_uri)["inputs"] == {"features": feats.sha256}
