"""The effective number of independent trials: correlated tries count once, independent ones each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsc.core.artifacts import SearchRecord
from rsc.evaluate.search import effective_trials


def grouped_series(groups: int, members: int, noise: float, bars: int = 500, seed: int = 0) -> np.ndarray:
    """``groups`` independent return streams, each seen ``members`` times with a little noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 0.01, (bars, groups))
    series = [base[:, g] + rng.normal(0.0, noise, bars) for g in range(groups) for _ in range(members)]
    return np.column_stack(series)


def test_checkpoints_of_one_trial_count_once():
    found = effective_trials(grouped_series(groups=3, members=4, noise=0.002))
    assert found.n == 3 and found.series == 12
    assert [len(set(found.labels[g * 4 : g * 4 + 4])) for g in range(3)] == [1, 1, 1]


def test_independent_trials_each_count():
    assert effective_trials(grouped_series(groups=10, members=1, noise=0.0)).n == 10


def test_the_threshold_decides_what_is_alike():
    loose = grouped_series(groups=2, members=3, noise=0.012)  # members correlate at about 0.4
    assert effective_trials(loose, min_correlation=0.2).n == 2
    assert effective_trials(loose, min_correlation=0.8).n == 6


def test_flat_series_form_one_cluster():
    live = grouped_series(groups=2, members=1, noise=0.0)
    returns = np.column_stack([live, np.zeros(500), np.zeros(500)])
    found = effective_trials(returns)
    assert found.n == 3 and found.labels[2] == found.labels[3] != found.labels[0]


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (np.zeros((1, 3)), "T >= 2"),
        (np.zeros((10, 0)), "N >= 1"),
        (np.array([[0.1, np.nan], [0.2, 0.3]]), "NaN"),
    ],
)
def test_bad_input_is_named(returns, message):
    with pytest.raises(ValueError, match=message):
        effective_trials(returns)


def test_the_record_counts_every_try_where_it_ran():
    record = SearchRecord(
        tune_trials={"a": 4, "b": 3},
        walk_forward={"candidate-0/fold-0": 2, "candidate-0/fold-1": 2, "candidate-1/fold-0": 2},
        final_training=5,
    )
    assert record.raw_count == 4 + 3 + 6 + 5
    assert record.breakdown() == {
        "tune_trials": 2,
        "tune_checkpoints": 7,
        "walk_forward_candidates": 2,
        "walk_forward_folds": 2,
        "walk_forward_checkpoints": 6,
        "final_training_checkpoints": 5,
    }


def test_a_big_search_is_thinned_evenly_within_each_trial():
    from rsc.stages.evaluate import thin_checkpoints

    columns = [f"t{t}/iter-{i}" for t in range(4) for i in range(1, 301)]
    frame = pd.DataFrame(np.zeros((3, len(columns))), columns=columns)
    kept = thin_checkpoints(frame, limit=40)
    assert kept.shape[1] == 40
    per_trial = pd.Series(kept.columns).str.split("/").str[0].value_counts()
    assert set(per_trial) == {10} and "t0/iter-1" in kept and "t0/iter-300" in kept
    assert thin_checkpoints(frame.iloc[:, :30], limit=40).shape[1] == 30  # small searches untouched
