"""Dataset versions outside run roots: the canonical hash, incremental ingest with overlap refusal and
restating, pinning a version, older hashes resolving, and gc keeping what anything references."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsc.core.schema import SYMBOL
from rsc.data import versions as versions_module
from rsc.data.append import RestateError
from rsc.data.versions import (
    CanonicalHash,
    DatasetVersions,
    VersionError,
    VersionWriter,
    canonical_columns,
    content_hash,
)
from rsc.launch.datasets import collect_garbage, list_versions
from rsc.stages import ingest
from rsc.storage import Storage, join
from tests.conftest import PROJECT, smoke_settings
from tests.helpers import synthetic_bars


def _write_csvs(folder: Path, bars: dict[str, pd.DataFrame]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, frame in bars.items():
        frame.drop(columns=[SYMBOL]).to_csv(folder / f"{symbol}.csv", index=False)
    return f"file://{folder}"


def _settings(root: Path, path: str, *overrides: str):
    return smoke_settings(root, "data.source=csv", f"data.path={path}", "data.symbols=[AAA,BBB]", *overrides)


def _bars(n: int = 700) -> dict[str, pd.DataFrame]:
    return {s: synthetic_bars(n, seed=i, symbol=s) for i, s in enumerate(("AAA", "BBB"))}


def test_the_hash_is_of_the_bars_not_of_the_parquet_layout():
    frame = pd.concat(_bars(300).values(), ignore_index=True)
    layouts = []
    for row_group in (17, 1_000):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, row_group_size=row_group)
        layouts.append(buffer.getvalue())
    assert layouts[0] != layouts[1]
    read = [pq.read_table(io.BytesIO(data)).to_pandas() for data in layouts]
    assert content_hash(read[0]) == content_hash(read[1]) == content_hash(frame)
    shuffled = frame.sample(frac=1.0, random_state=0)[list(reversed(frame.columns))]
    assert content_hash(shuffled) == content_hash(frame)
    changed = frame.copy()
    changed.loc[5, "close"] += 1e-9
    assert content_hash(changed) != content_hash(frame)


def test_new_bars_are_appended_and_only_changed_symbols_rewritten(tmp_path):
    full = _bars()
    first = {s: b.iloc[:600] for s, b in full.items()}
    cfg = _settings(tmp_path, _write_csvs(tmp_path / "v1", first))
    one = ingest.run(cfg)
    versions = DatasetVersions.of(Storage(), cfg.storage.root, cfg.dataset_name)
    parts = sorted((tmp_path / "datasets" / cfg.dataset_name / "parts").rglob("*.parquet"))
    assert len(parts) == 2 and one.rows == 1200
    # A later export: AAA's last 50 bars again (same values) and 100 new ones; BBB unchanged.
    later = {"AAA": full["AAA"].iloc[550:], "BBB": first["BBB"]}
    cfg2 = _settings(tmp_path, _write_csvs(tmp_path / "v1", later))
    two = ingest.run(cfg2)
    assert two.rows == 1300 and two.sha256 != one.sha256
    after = sorted((tmp_path / "datasets" / cfg.dataset_name / "parts").rglob("*.parquet"))
    assert len(after) == 3 and set(parts) < set(after)  # BBB's file reused, one new file for AAA
    stored = versions.read(versions.latest())
    expected = pd.concat([full["AAA"], first["BBB"]], ignore_index=True)
    assert content_hash(stored) == content_hash(expected[stored.columns])
    assert versions.manifest(one.sha256)["rows"] == 1200  # the earlier version is still there


def test_overlapping_bars_with_other_values_are_refused_unless_restated(tmp_path):
    bars = _bars(600)
    cfg = _settings(tmp_path, _write_csvs(tmp_path / "src", bars))
    first = ingest.run(cfg)
    restated = {s: b.copy() for s, b in bars.items()}
    restated["BBB"].loc[100:, ["open", "high", "low", "close"]] *= 0.5  # a split the provider applied
    ingest_path = _write_csvs(tmp_path / "src", restated)
    with pytest.raises(RestateError, match=r"BBB: 500 bar\(s\) already stored differ.*data\.restate=true"):
        ingest.run(_settings(tmp_path, ingest_path))
    versions = DatasetVersions.of(Storage(), cfg.storage.root, cfg.dataset_name)
    assert versions.latest()["sha256"] == first.sha256  # nothing written
    assert Storage().read_manifest(join(cfg.run_root, "bars"))["sha256"] == first.sha256
    again = ingest.run(_settings(tmp_path, ingest_path, "data.restate=true"))
    stored = versions.read(versions.latest(), ["BBB"])
    assert again.rows == 1200 and stored["close"].iloc[-1] == pytest.approx(restated["BBB"]["close"].iloc[-1])


def test_a_pinned_version_is_used_as_it_is_and_older_hashes_resolve(tmp_path):
    bars = _bars(600)
    path = _write_csvs(tmp_path / "src", {s: b.iloc[:500] for s, b in bars.items()})
    first = ingest.run(_settings(tmp_path, path))
    ingest.run(_settings(tmp_path, _write_csvs(tmp_path / "src", bars)))  # a newer version on top
    pinned = ingest.run(_settings(tmp_path, path, f"data.version={first.sha256[:10]}", "run.name=pinned"))
    assert pinned.sha256 == first.sha256 and pinned.rows == 1000
    versions = DatasetVersions.of(Storage(), f"file://{tmp_path}", _settings(tmp_path, path).dataset_name)
    legacy = versions.manifest(first.sha256)["listing_sha256"]
    assert versions.resolve(legacy)["sha256"] == first.sha256  # the hash runs recorded before versions
    with pytest.raises(VersionError, match="is not a version of this dataset"):
        versions.resolve("0123456789abcdef")


def test_gc_keeps_every_referenced_version(tmp_path):
    import mlflow

    storage, root = Storage(), f"file://{tmp_path}"
    bars = _bars(600)
    made = []
    for i, n in enumerate((400, 450, 500, 550)):  # run-a, a model's run, nothing, the latest
        path = _write_csvs(tmp_path / f"src{i}", {s: b.iloc[:n] for s, b in bars.items()})
        cfg = _settings(tmp_path, path, "data.dataset=stocks", f"run.name=run-{'abcd'[i]}")
        made.append(ingest.run(cfg).sha256)
    for name in ("run-b", "run-c"):  # their run roots are gone; only a model refers to run-b's bars
        storage.filesystem(join(root, name))[0].rm(str(tmp_path / name), recursive=True)
    versions = DatasetVersions.of(storage, root, "stocks")
    legacy = versions.manifest(made[1])["listing_sha256"]
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.tracking_uri)
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("gc")
    run = client.create_run(experiment, tags={"rsc.data.bars_sha256": legacy})  # recorded before versions
    client.create_registered_model("rsc-test")
    client.create_model_version("rsc-test", f"file://{tmp_path}/model", run_id=run.info.run_id)
    later = time.time() + 30 * 86_400
    kept_young = collect_garbage(storage, root, cfg.tracking_uri, grace_days=7.0)
    assert kept_young == []  # everything is younger than the grace period
    removed = collect_garbage(storage, root, cfg.tracking_uri, grace_days=7.0, now=later)
    assert [info.version for info in removed] == [made[2]]
    assert versions.names() == sorted([made[0], made[1], made[3]])
    for version in (made[0], made[1], made[3]):
        assert len(versions.read(versions.manifest(version))) == versions.manifest(version)["rows"]
    listed = {info.version: info.referrers for info in list_versions(storage, root, "stocks")}
    assert listed[made[0]] == ("run run-a",) and listed[made[3]] == ("run run-d",)
    shown = subprocess.run(
        [sys.executable, "-m", "rsc", "data", "versions", "stocks", "configs/base.yaml", "configs/smoke.yaml",
         f"storage.root={root}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "model rsc-test v1" in shown.stdout and "run run-a" in shown.stdout
    assert json.loads((tmp_path / "run-a" / "bars" / "manifest.json").read_text())["sha256"] == made[0]


@pytest.mark.slow
def test_a_fixed_model_on_a_pinned_version_reproduces_its_metrics(tmp_path, ray_session):
    """Train and evaluate on one version; newer bars arrive; a run pinned to the first version evaluates
    the same model to the same figures, bit for bit."""
    from rsc.evaluate.suite import strategy_metrics
    from rsc.stages import evaluate, features, split, train

    bars = _bars(1000)
    path = _write_csvs(tmp_path / "src", {s: b.iloc[:900] for s, b in bars.items()})
    common = ("data.symbols=[AAA]", "tune.enabled=false", f"ray.address={ray_session.address}")
    cfg = _settings(tmp_path, path, *common)
    first = ingest.run(cfg)
    parts = split.run(cfg, features.run(cfg, first.bars_uri).features_uri)
    model = train.run(cfg, parts.split_uri, parts.scaler_uri).model_uri
    original = Storage().read_json(evaluate.run(cfg, parts.split_uri, parts.scaler_uri, model).metrics_uri)
    newer = ingest.run(_settings(tmp_path, _write_csvs(tmp_path / "src", bars), *common))
    assert newer.sha256 != first.sha256
    pinned = _settings(tmp_path, path, *common, "run.name=replay", f"data.version={first.sha256[:12]}")
    again = ingest.run(pinned)
    parts = split.run(pinned, features.run(pinned, again.bars_uri).features_uri)
    replayed = Storage().read_json(evaluate.run(pinned, parts.split_uri, parts.scaler_uri, model).metrics_uri)
    assert strategy_metrics(replayed) == strategy_metrics(original)
    assert replayed["statistics"] == original["statistics"] and replayed["period"] == original["period"]


def test_a_version_written_symbol_by_symbol_is_the_version_of_the_whole_frame(tmp_path):
    bars = {
        s: synthetic_bars(n, seed=i, symbol=s) for i, (s, n) in enumerate((("ZZ", 40), ("AA", 70), ("MM", 5)))
    }
    frame = pd.concat(bars.values(), ignore_index=True)
    whole = DatasetVersions.of(Storage(), f"file://{tmp_path}/a", "d").write(frame)
    versions = DatasetVersions.of(Storage(), f"file://{tmp_path}/b", "d")
    writer = VersionWriter(versions)
    for symbol in ("MM", "ZZ", "AA"):  # any arrival order
        writer.add(writer.store(symbol, bars[symbol]))
    streamed = writer.commit()
    assert streamed["sha256"] == whole["sha256"] == content_hash(frame)
    assert {k: v for k, v in streamed.items() if k != "base"} == {
        k: v for k, v in whole.items() if k != "base"
    }


def test_the_canonical_hash_spills_to_disk_and_stays_the_same(monkeypatch):
    monkeypatch.setattr(versions_module, "SPOOL_BYTES", 64)
    bars = [synthetic_bars(300, seed=i, symbol=s) for i, s in enumerate(("BB", "AA"))]
    spooled = CanonicalHash()
    for rows in bars:
        spooled.add(rows[SYMBOL].iloc[0], canonical_columns(rows[SYMBOL].iloc[0], rows), len(rows))
    assert spooled.hexdigest() == content_hash(pd.concat(bars, ignore_index=True))
    spooled.close()


def test_a_failed_ingest_removes_the_files_it_wrote(tmp_path):
    bars = _bars(600)
    cfg = _settings(tmp_path, _write_csvs(tmp_path / "src", bars))
    first = ingest.run(cfg)
    parts = tmp_path / "datasets" / cfg.dataset_name / "parts"
    before = sorted(parts.rglob("*.parquet"))
    changed = {"AAA": synthetic_bars(650, seed=7, symbol="AAA"), "BBB": bars["BBB"].assign(close=-1.0)}
    with pytest.raises(ValueError, match=r"BBB"):  # AAA's new file is written before BBB fails
        ingest.run(_settings(tmp_path, _write_csvs(tmp_path / "bad", changed), "data.restate=true"))
    assert sorted(parts.rglob("*.parquet")) == before
    versions = DatasetVersions.of(Storage(), cfg.storage.root, cfg.dataset_name)
    assert versions.latest()["sha256"] == first.sha256


def test_the_clean_lane_and_the_frame_route_store_the_same_version(tmp_path):
    """Files the reader types (ISO dates) skip the frame route; the version they make is the one the
    same bars make when every stamp goes through the loader's own parse."""
    bars = _bars(300)
    clean = ingest.run(_settings(tmp_path / "a", _write_csvs(tmp_path / "dates", bars)))
    as_text = {
        s: b.assign(timestamp=b["timestamp"].dt.strftime("%Y-%m-%d 00:00:00")) for s, b in bars.items()
    }
    framed = ingest.run(_settings(tmp_path / "b", _write_csvs(tmp_path / "text", as_text)))
    assert clean.sha256 == framed.sha256 and clean.rows == framed.rows == 600
