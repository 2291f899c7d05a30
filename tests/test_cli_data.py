"""``rsc data ...`` end to end on small files: exit codes, reports, and nothing written on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsc.cli.main import main
from rsc.storage import Storage
from tests.conftest import CONFIGS
from tests.helpers import synthetic_bars


@pytest.fixture
def bar_files(tmp_path: Path) -> Path:
    folder = tmp_path / "bars"
    folder.mkdir()
    for i, symbol in enumerate(["AAA", "BBB"]):
        synthetic_bars(400, seed=i).drop(columns="symbol").to_csv(folder / f"{symbol}.csv", index=False)
    return folder


def settings_args(root: Path) -> list[str]:
    return [
        str(CONFIGS / "base.yaml"),
        str(CONFIGS / "smoke.yaml"),
        f"storage.root=file://{root}",
        "data.start=2014-01-01",
        "data.end=2016-12-31",
        "split.train_end=2015-09-30",
        "split.validation_end=2016-01-31",
        "split.walk_forward.folds=2",
    ]


def test_validate_reports_and_exits_non_zero_on_failures(bar_files, capsys):
    assert main(["data", "validate", str(bar_files)]) == 0
    assert "all bars valid" in capsys.readouterr().out
    frame = synthetic_bars(400, seed=1).drop(columns="symbol")
    frame.loc[17, "volume"] = -3
    frame.to_csv(bar_files / "BBB.csv", index=False)
    assert main(["data", "validate", str(bar_files)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "row 17" in out and "negative volume" in out and "1 symbol(s) failed" in out
    assert main(["data", "validate", str(bar_files), "--repair", "volume"]) == 0
    assert "repaired" in capsys.readouterr().out


def test_ingest_features_split_from_the_command_line(bar_files, tmp_path, capsys):
    root = tmp_path / "store"
    args = settings_args(root)
    assert main(["data", "ingest", *args, "--path", str(bar_files), "--symbols", "*"]) == 0
    assert main(["data", "features", *args]) == 0
    assert main(["data", "split", *args]) == 0
    out = capsys.readouterr().out
    assert "bars: 2 symbols, 800 rows" in out and "walk-forward: 2 folds" in out
    run = f"file://{root}/smoke"
    storage = Storage()
    assert (
        storage.read_manifest(f"{run}/features")["inputs"]["bars"]
        == storage.read_manifest(f"{run}/bars")["sha256"]
    )
    assert len(storage.read_json(f"{run}/folds.json")["folds"]) == 2


def test_ingest_of_bad_input_is_one_line_and_writes_nothing(bar_files, tmp_path, capsys):
    frame = synthetic_bars(400).drop(columns="symbol")
    frame.loc[9, "close"] = np.inf
    frame.to_csv(bar_files / "AAA.csv", index=False)
    root = tmp_path / "store"
    code = main(["data", "ingest", *settings_args(root), "--path", str(bar_files), "--symbols", "AAA", "BBB"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"rsc: data error: {bar_files}/AAA.csv [AAA] row 9 (2015-01-14): close is inf" in err
    assert not root.exists()


def test_validate_of_a_missing_path_is_one_line(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "nothing.csv")]) == 1
    assert f"rsc: data error: {tmp_path}/nothing.csv: file not found" in capsys.readouterr().err
