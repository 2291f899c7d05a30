"""Model lineages: one strategy, universe and bar size per registered model, and one test window per
comparison (the champion re-scored on the challenger's window, through its own features and scaler)."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rsc.registry.lineage import bar_frequency
from rsc.registry.promotion import gate_evidence
from rsc.registry.tracking import CHAMPION, configure, model_version, resolve_alias, use_registry
from rsc.stages import evaluate, ingest
from rsc.stages.champion_window import rescorer_for_version
from rsc.storage import Storage, join
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars
from tests.stored_run import register_policy_run, store_run


@pytest.mark.parametrize(
    ("stamps", "label"),
    [
        (pd.date_range("2020-01-01 09:30", periods=50, freq="min"), "1m"),
        (pd.date_range("2020-01-01 09:30", periods=50, freq="5min"), "5m"),
        (pd.date_range("2020-01-01", periods=50, freq="h"), "1h"),
        (pd.date_range("2020-01-01", periods=50, freq="4h"), "4h"),
        (pd.bdate_range("2020-01-01", periods=50), "1d"),
        (pd.date_range("2020-01-01", periods=50, freq="D"), "1d"),
        (pd.date_range("2020-01-03", periods=50, freq="W-FRI"), "1wk"),
        (pd.date_range("2020-01-31", periods=50, freq="ME"), "1mo"),
    ],
)
def test_bar_size_from_the_bars(stamps, label):
    assert bar_frequency(stamps.to_numpy()) == label


def test_the_model_name_derives_from_strategy_universe_and_bar_size():
    assert smoke_settings("/tmp/x", "run.name=demo").model_name == "rsc-demo-spx-1d"
    assert smoke_settings("/tmp/x", "data.symbols=[NDX]").model_name == "rsc-smoke-ndx-1d"
    assert smoke_settings("/tmp/x", "registry.strategy=Momentum A").model_name == "rsc-momentum-a-spx-1d"
    hourly = smoke_settings("/tmp/x", "data.frequency=1h", "data.symbols=[EURUSD, GBPUSD]")
    assert hourly.model_name == "rsc-smoke-eurusd_gbpusd-1h"
    assert smoke_settings("/tmp/x", "registry.model_name=rsc-policy").model_name == "rsc-policy"


def test_ingest_checks_the_declared_bar_size(tmp_path):
    path = tmp_path / "EURUSD.csv"
    bars = synthetic_bars(300).drop(columns="symbol")
    bars["timestamp"] = pd.date_range("2016-03-01", periods=300, freq="h", tz="UTC").strftime(
        "%Y-%m-%dT%H:%M%z"
    )
    bars.to_csv(path, index=False)
    args = ("data.source=csv", f"data.path={path}", "data.symbols=[EURUSD]", "data.start=2016-03-01")
    dates = ("data.end=2016-03-13", "split.train_end=2016-03-06", "split.validation_end=2016-03-09")
    with pytest.raises(
        ValueError, match=r"the bars are 1h bars but the settings declare 1d: set data.frequency=1h"
    ):
        ingest.run(smoke_settings(tmp_path / "a", *args, *dates))
    assert not (tmp_path / "a").exists()
    cfg = smoke_settings(tmp_path / "b", *args, *dates, "data.frequency=1h")
    assert ingest.run(cfg).rows == 300 and cfg.model_name == "rsc-smoke-eurusd-1h"


# -- the gate across runs --------------------------------------------------------------------------

EARLY = ("split.validation_end=2017-06-30", "data.symbols=[SYN]")  # 900 bars from 2015: test 2017-07..2018-06
LATE = ("split.validation_end=2018-06-30", "data.symbols=[SYN]")  # 1100 bars: test 2018-07..2019-03


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one lineage with different test windows, and one run of another universe."""
    root = tmp_path_factory.mktemp("lineage")
    early = smoke_settings(root, "run.name=early", *EARLY)
    late = smoke_settings(root, "run.name=late", *LATE)
    other = smoke_settings(root, "run.name=other", "split.validation_end=2017-06-30", "data.symbols=[OTH]")
    stored = {
        "early": (early, store_run(early)),
        "late": (late, store_run(late, n_bars=1100)),
        "other": (other, store_run(other, symbols=("OTH",))),
    }
    configure(early.tracking_uri, early.registry.experiment, join(early.storage.root, "mlartifacts"))
    return stored


def named(cfg, name: str):
    update = {"model_name": name, "min_deflated_sharpe": None}
    return cfg.model_copy(update={"registry": cfg.registry.model_copy(update=update)})


def champion_on_late_window(runs, champion_model_uri: str) -> float:
    """The champion scored on the late run's test bars by the evaluate stage itself, with its own scaler."""
    early_uris, (late, late_uris) = runs["early"][1], runs["late"]
    result = evaluate.run(late, late_uris["split"], early_uris["scaler"], champion_model_uri, folds=[])
    return result.metrics["policy"]["sharpe"]


@pytest.mark.parametrize("challenger_wins", [True, False])
def test_champion_is_rescored_on_the_challengers_window(runs, challenger_wins):
    """Promotes a challenger that beats the champion on its window while losing to the champion's old
    number, and keeps the champion when the challenger beats the old number but loses on the window."""
    use_registry(runs["early"][0].tracking_uri)
    name = f"window-{challenger_wins}"
    (early, early_uris), (late, late_uris) = runs["early"], runs["late"]
    old_number = 5.0 if challenger_wins else -5.0
    champion_uri, first = register_policy_run(named(early, name), early_uris, 1, sharpe=old_number)
    assert first.promoted and resolve_alias(name, CHAMPION) == 1
    there = champion_on_late_window(runs, champion_uri)
    challenger_sharpe = there + 0.25 if challenger_wins else there - 0.25
    _, second = register_policy_run(
        named(late, name), late_uris, 2, sharpe=challenger_sharpe, buy_and_hold=-9
    )
    assert second.promoted is challenger_wins
    assert resolve_alias(name, CHAMPION) == (2 if challenger_wins else 1)
    version = model_version(name, 2)
    assert version.metrics["gate/champion"] == pytest.approx(there, abs=1e-9)
    assert version.metrics["gate/champion_recorded"] == old_number
    assert "on 2018-07-02..2019-03-20 (re-scored; " in second.reason, second.reason
    assert version.tags["rsc.lineage.test_window"] == "2018-07-02..2019-03-20"
    assert model_version(name, 1).tags["rsc.lineage.seen_until"] == "2017-06-30"
    if not challenger_wins:  # a champion that cannot be scored on the window is not compared: says why

        def broken(model: str, number: int) -> float:
            raise OSError("model files gone")

        evidence = gate_evidence(name, 2, "sharpe", broken)
        assert evidence.not_comparable == (
            "champion v1 could not be re-scored on 2018-07-02..2019-03-20: OSError: model files gone"
        )


def test_a_champion_that_saw_the_window_is_not_compared(runs):
    use_registry(runs["early"][0].tracking_uri)
    (early, early_uris), (late, late_uris) = runs["early"], runs["late"]
    register_policy_run(named(late, "saw"), late_uris, 3, sharpe=0.1)
    _, result = register_policy_run(named(early, "saw"), early_uris, 4, sharpe=9.0, buy_and_hold=-9)
    assert not result.promoted and resolve_alias("saw", CHAMPION) == 1
    assert (
        "champion v1 trained or was selected on bars up to 2018-06-30, inside this version's test window"
        in (result.reason)
    )


def test_a_later_promotion_rescores_under_the_versions_own_evaluation_settings(runs):
    """``rsc registry promote`` re-scores with the evaluation settings the version's run logged, not
    with whatever the settings say today."""
    use_registry(runs["late"][0].tracking_uri)
    late, late_uris = runs["late"]
    register_policy_run(named(late, "own-settings"), late_uris, 6, sharpe=0.3)
    today = late.model_copy(update={"evaluate": late.evaluate.model_copy(update={"risk_free_rate": 0.5})})
    logged = rescorer_for_version(late, "own-settings", 1)("own-settings", 1)
    assert rescorer_for_version(today, "own-settings", 1)("own-settings", 1) == logged


def test_other_symbols_leave_the_champion_in_place(runs):
    """The issue's case: a run on other symbols with only the data changed. With the derived names it
    registers its own lineage; forced into the same name, the gate refuses and says why."""
    use_registry(runs["early"][0].tracking_uri)
    (early, early_uris), (other, other_uris) = runs["early"], runs["other"]
    early, other = (
        c.model_copy(update={"run": c.run.model_copy(update={"name": "demo"})}) for c in (early, other)
    )
    _, first = register_policy_run(early, early_uris, 5, sharpe=-1.0)
    _, second = register_policy_run(other, other_uris, 6, sharpe=3.0)
    assert (first.model_name, second.model_name) == ("rsc-demo-syn-1d", "rsc-demo-oth-1d")
    assert first.promoted and second.promoted  # each the first of its own lineage
    assert resolve_alias("rsc-demo-syn-1d", CHAMPION) == 1
    shared = named(early, "shared")
    register_policy_run(shared, early_uris, 7, sharpe=-1.0)
    _, refused = register_policy_run(named(other, "shared"), other_uris, 8, sharpe=3.0, buy_and_hold=-9)
    assert not refused.promoted and resolve_alias("shared", CHAMPION) == 1
    assert "champion v1 is another lineage: this version trades OTH, not SYN" in refused.reason
    assert model_version("shared", 2).tags["rsc.lineage.universe"] == "OTH"
    assert Storage().exists(early_uris["split"])


def test_migrate_splits_the_legacy_model_into_lineages(runs, capsys):
    """Before lineages every run registered as rsc-policy: an S&P model v1, then another instrument's v2
    took @champion. The migration gives each lineage its own model and champion; rsc-policy stays."""
    from rsc.cli.main import main
    from rsc.registry.promotion import promote

    (early, early_uris), (other, other_uris) = runs["early"], runs["other"]
    legacy = (named(c, "rsc-policy") for c in (early, other))
    legacy_early, legacy_other = legacy
    register_policy_run(legacy_early, early_uris, 9, sharpe=0.5)
    register_policy_run(legacy_other, other_uris, 10, sharpe=0.1, buy_and_hold=-9)
    promote("rsc-policy", 2)  # as the old gate did, across instruments
    args = ["registry", "migrate", f"storage.root={early.storage.root}", "run.name=early"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rsc-policy -> rsc-early-syn-1d (@champion v1)" in out
    assert "rsc-policy -> rsc-other-oth-1d (@champion v1)" in out
    assert resolve_alias("rsc-policy", CHAMPION) == 2  # what was served keeps being served
    copied = model_version("rsc-early-syn-1d", 1)
    assert (
        copied.tags["rsc.lineage.universe"] == "SYN" and copied.tags["rsc.lineage.seen_until"] == "2017-06-30"
    )
    assert copied.tags["rsc.lineage.test_window"] == "2017-07-03..2018-06-13"
    assert model_version("rsc-policy", 1).tags["rsc.lineage.migrated_to"] == "rsc-early-syn-1d/1"
    assert main(args) == 0  # once is enough: nothing is copied twice
    assert len(MlflowClient().search_model_versions("name='rsc-early-syn-1d'")) == 1
