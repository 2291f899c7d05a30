"""Walk-forward model selection: aggregation rules, the test part kept out, and a real selection run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from rsc.core.artifacts import FoldRecord
from rsc.rl.walk_forward import select, summarise, usable_folds
from rsc.stages import evaluate, tune
from rsc.storage import Storage, join
from rsc.storage.layout import RunLayout, read_folds, read_search
from tests.conftest import smoke_settings


def per_fold_table() -> pd.DataFrame:
    # candidate 0: steady; candidate 1: one great fold, one bad fold.
    return pd.DataFrame(
        {
            "candidate": [0, 0, 0, 1, 1, 1],
            "fold": [0, 1, 2, 0, 1, 2],
            "eval/sharpe": [0.8, 0.9, 0.7, 3.0, -1.5, 0.6],
        }
    )


@pytest.mark.parametrize(("how", "winner"), [("mean", 0), ("worst", 0), ("mean_minus_std", 0)])
def test_aggregates_prefer_the_steady_candidate(how, winner):
    summary = summarise(per_fold_table(), "eval/sharpe", how)
    assert select(summary) == winner
    steady = summary.set_index("candidate").loc[0]
    assert steady["mean"] == pytest.approx(0.8) and steady["worst"] == pytest.approx(0.7)
    assert steady["std"] == pytest.approx(0.1)


def test_the_lucky_candidate_wins_on_the_mean_when_it_really_is_better():
    table = per_fold_table()
    table.loc[table.candidate == 1, "eval/sharpe"] = [3.0, 0.5, 0.9]
    assert select(summarise(table, "eval/sharpe", "mean")) == 1
    assert select(summarise(table, "eval/sharpe", "worst")) == 0


def test_unknown_aggregate_is_named():
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        summarise(per_fold_table(), "eval/sharpe", "median")


def test_folds_touching_the_test_part_are_not_used():
    folds = [
        FoldRecord.model_construct(validation=("2017-01-01", "2017-06-30")),
        FoldRecord.model_construct(validation=("2017-07-01", "2018-01-31")),
    ]
    assert usable_folds(folds, "2017-12-31") == folds[:1]
    assert usable_folds(folds, "2018-01-31") == folds


@pytest.mark.slow
def test_selection_runs_on_real_folds_and_reaches_the_report(smoke_split, ray_session, tmp_path):
    cfg, split = smoke_split
    cfg = smoke_settings(
        Storage().local_path(cfg.storage.root),
        f"ray.address={ray_session.address}",
        "tune.num_samples=2",
        "tune.iterations=2",  # a Tune trial validates every iteration (its scheduler reads each)
        "tune.selection.iterations=1",
        "tune.selection.walk_forward=true",
        "tune.selection.candidates=2",
        "tune.selection.aggregate=worst",
    )
    result = tune.run(cfg, split.split_uri, split.scaler_uri)
    storage = Storage()
    layout = RunLayout(cfg.run_root)
    stored = storage.read_bytes(join(cfg.run_root, "tune", "walk_forward.parquet"))
    per_fold = pd.read_parquet(io.BytesIO(stored))
    folds = usable_folds(read_folds(storage, split.folds_uri).folds, str(cfg.split.validation_end))
    assert len(per_fold) == 2 * len(folds) and len(folds) >= 1
    # The raw count is what ran: every iteration of every Tune trial (its scheduler may stop one early;
    # a trial validates each iteration), then 2 candidates x folds x 1 re-training iteration.
    record = read_search(storage, layout.search)
    experiment = Storage().local_path(layout.sweep)
    iterations = [len(f.read_text().splitlines()) for f in Path(experiment).glob("*/result.json")]
    assert len(iterations) == 2 and sorted(record.tune_trials.values()) == sorted(iterations)
    assert record.raw_count == sum(iterations) + 2 * len(folds) * 1
    assert set(record.walk_forward.values()) == {1} and len(record.walk_forward) == 2 * len(folds)
    checkpoints = pd.read_parquet(io.BytesIO(storage.read_bytes(layout.checkpoint_returns)))
    assert len(checkpoints.columns) == sum(iterations)
    assert set(record.compared_sharpes) == set(record.tune_trials)
    summary = summarise(per_fold, "eval/sharpe", "worst")
    chosen = select(summary)
    assert per_fold.loc[per_fold.chosen, "candidate"].unique().tolist() == [chosen]
    trials = pd.read_parquet(io.BytesIO(storage.read_bytes(result.trials_uri)))
    ranked = trials.sort_values("best/eval/sharpe", ascending=False).reset_index(drop=True)
    assert result.best_params == {"lr": ranked.loc[chosen, "config/lr"]}
    assert storage.read_json(result.best_params_uri)["selected_by"] == "walk-forward worst of eval/sharpe"
    assert (per_fold["validation_end"] <= str(cfg.split.validation_end)).all()
    returns = pd.read_parquet(
        io.BytesIO(storage.read_bytes(join(cfg.run_root, "tune", "walk_forward_returns.parquet")))
    )
    assert sorted(returns.columns) == sorted(
        f"candidate-{c}/fold-{f}" for c in range(2) for f in range(len(folds))
    )
    assert all(returns[column].notna().sum() > 0 for column in returns.columns)
    client = MlflowClient(cfg.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
    (sweep,) = client.search_runs([experiment], "tags.`rsc.kind` = 'sweep'")
    logged = json.loads(
        Path(client.download_artifacts(sweep.info.run_id, "walk_forward.json", str(tmp_path))).read_text()
    )
    assert len(logged["data"]) == len(per_fold)  # the fold table in MLflow too
    rows = evaluate.load_folds(storage, cfg.run_root)
    assert len(rows) == len(folds) == 2  # the smoke settings' two folds, laid from the start
    assert {"train", "validation", "rows (train / validation)", "eval/sharpe"} <= set(rows[0])
    assert rows[0]["validation"] == f"{folds[0].validation[0][:10]} .. {folds[0].validation[1][:10]}"
    for fold, row in zip(folds, rows, strict=True):  # every candidate's Sharpe ratio on every fold
        values = per_fold[per_fold["fold"] == folds.index(fold)].sort_values("candidate")
        for candidate in values.to_dict(orient="records"):
            mark = " (chosen)" if candidate["candidate"] == chosen else ""
            assert row[f"candidate {candidate['candidate']}{mark} eval/sharpe"] == candidate["eval/sharpe"]
