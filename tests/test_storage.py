"""Storage on file:// and on s3:// (moto's server on 127.0.0.1): datasets, manifests, atomicity."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rsc.config.settings import StorageSettings
from rsc.storage import Storage, join
from rsc.storage.store import PLAIN
from tests.helpers import synthetic_bars


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path) -> tuple[Storage, str]:
    if request.param == "file":
        return Storage(), f"file://{tmp_path}"
    endpoint = request.getfixturevalue("s3_endpoint")
    return Storage(s3_endpoint_url=endpoint), f"s3://rsc-test/{tmp_path.name}"


def test_dataset_round_trip_and_manifest(store):
    storage, root = store
    frame = synthetic_bars(50)
    uri = join(root, "bars")
    manifest = storage.write_dataset(uri, frame, inputs={"raw": "abc"})
    assert manifest["rows"] == 50
    assert manifest["inputs"] == {"raw": "abc"}
    assert manifest["time_range"][0].startswith("2015-01-01")
    pd.testing.assert_frame_equal(storage.read_dataset(uri), frame)


def many_symbols() -> pd.DataFrame:
    return pd.concat(
        [synthetic_bars(40, seed=i, symbol=name) for i, name in enumerate(["MSFT", "^GSPC", "BRK/B"])],
        ignore_index=True,
    )


def test_same_input_same_hash_on_every_filesystem(store, tmp_path):
    storage, root = store
    frame = many_symbols()
    first = storage.write_dataset(join(root, "a"), frame, inputs={"raw": "abc"})
    again = storage.write_dataset(join(root, "a"), frame, inputs={"raw": "abc"})
    local = Storage().write_dataset(f"file://{tmp_path}/reference", frame, inputs={"raw": "abc"})
    assert first["sha256"] == again["sha256"] == local["sha256"]
    manifest_bytes = storage.read_bytes(join(root, "a", "manifest.json"))
    assert manifest_bytes == Storage().read_bytes(f"file://{tmp_path}/reference/manifest.json")
    changed = frame.copy()
    changed.loc[5, "close"] *= 1.0001
    assert storage.write_dataset(join(root, "b"), changed)["sha256"] != first["sha256"]


def test_datasets_are_partitioned_by_symbol(store):
    storage, root = store
    frame = many_symbols()
    uri = join(root, "bars")
    manifest = storage.write_dataset(uri, frame)
    assert manifest["partition_by"] == "symbol"
    assert list(manifest["partitions"]) == ["BRK/B", "MSFT", "^GSPC"]
    assert manifest["partitions"]["^GSPC"]["file"].startswith("symbol=%5EGSPC/part-")
    assert manifest["partitions"]["BRK/B"]["file"].startswith("symbol=BRK%2FB/part-")
    assert manifest["time_range"] == ["2015-01-01 00:00:00", "2015-02-25 00:00:00"]
    fs, path = storage.filesystem(uri)
    assert sorted(p.removeprefix(path.rstrip("/") + "/") for p in fs.find(path)) == sorted(
        ["manifest.json", *manifest["files"]]
    )
    one = storage.read_dataset(uri, symbols=["^GSPC"])
    pd.testing.assert_frame_equal(one, frame[frame.symbol == "^GSPC"].reset_index(drop=True))
    everything = storage.read_dataset(uri).sort_values(["symbol", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(everything, frame.sort_values(["symbol", "timestamp"], ignore_index=True))
    with pytest.raises(KeyError, match=r"no symbol\(s\) \['AAPL'\]"):
        storage.read_dataset(uri, symbols=["AAPL"])


def test_rewrite_removes_files_of_the_old_version(store):
    storage, root = store
    uri = join(root, "ds")
    storage.write_dataset(uri, many_symbols())
    manifest = storage.write_dataset(uri, synthetic_bars(10, symbol="ONLY"))
    fs, path = storage.filesystem(uri)
    assert sorted(p.removeprefix(path.rstrip("/") + "/") for p in fs.find(path)) == sorted(
        ["manifest.json", *manifest["files"]]
    )


def test_crash_between_partition_files_keeps_previous_version(store, monkeypatch):
    storage, root = store
    uri = join(root, "ds")
    storage.write_dataset(uri, synthetic_bars(20))
    before = storage.read_bytes(join(uri, "manifest.json"))
    written = []
    real = Storage.write_bytes

    def crash_on_second_file(self, target, data):
        if target.endswith(".parquet") and len(written) == 1:
            raise OSError("connection reset")
        written.append(target)
        real(self, target, data)

    monkeypatch.setattr(Storage, "write_bytes", crash_on_second_file)
    with pytest.raises(OSError, match="connection reset"):
        storage.write_dataset(uri, many_symbols())
    monkeypatch.undo()
    assert len(written) == 1  # one new partition file landed, the manifest did not
    assert storage.read_bytes(join(uri, "manifest.json")) == before
    pd.testing.assert_frame_equal(storage.read_dataset(uri), synthetic_bars(20))
    storage.write_dataset(uri, synthetic_bars(20))  # the next write sweeps the leftover away
    fs, path = storage.filesystem(uri)
    assert len(fs.find(path)) == 2


def test_crash_before_the_first_manifest_leaves_no_dataset(store, monkeypatch):
    storage, root = store
    uri = join(root, "new")

    def crash(self, uri, payload):
        raise OSError("disk full")

    monkeypatch.setattr(Storage, "write_json", crash)
    with pytest.raises(OSError):
        storage.write_dataset(uri, many_symbols())
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        storage.read_dataset(uri)


def test_missing_dataset_is_a_clear_error(store):
    storage, root = store
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        storage.read_dataset(join(root, "nothing"))


def test_folder_upload_and_download(store, tmp_path):
    storage, root = store
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("b")
    storage.upload_dir(source, join(root, "ckpt"))
    target = storage.download_dir(join(root, "ckpt"), tmp_path / "dst")
    assert (target / "a.txt").read_text() == "a"
    assert (target / "sub" / "b.txt").read_text() == "b"


def test_s3_credentials_and_endpoint_from_settings(s3_endpoint, monkeypatch, tmp_path):
    """Settings win over the AWS_* variables; with none set, botocore's chain (the variables) is used."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    settings = StorageSettings(
        root="s3://rsc-test",
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="configured",
        s3_secret_access_key="configured-secret",
    )
    storage = Storage.from_settings(settings)
    assert storage.s3_options() == {
        "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        "key": "configured",
        "secret": "configured-secret",
    }
    fs, _ = storage.filesystem("s3://rsc-test/x")
    assert (fs.key, fs.secret) == ("configured", "configured-secret")
    storage.write_json(f"s3://rsc-test/{tmp_path.name}/c.json", {"ok": True})
    assert storage.read_json(f"s3://rsc-test/{tmp_path.name}/c.json") == {"ok": True}
    assert Storage().s3_options() == {}


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        Storage().read_bytes("gs://bucket/x")


def test_file_source_reads_a_folder_of_csv_files(store):
    """The csv/parquet sources go through Storage, so a folder on S3 works like a local one."""
    from rsc.data.sources import FileSource

    storage, root = store
    for symbol in ("AAA", "^BBB"):
        body = synthetic_bars(15, symbol=symbol).drop(columns="symbol").to_csv(index=False).encode()
        storage.write_bytes(join(root, "raw", f"{quote(symbol, safe='')}.csv"), body)
    fetched = {raw.symbol: raw for raw in FileSource(join(root, "raw"), storage).fetch(["*"])}
    assert sorted(fetched) == ["AAA", "^BBB"]
    assert len(fetched["^BBB"].frame) == 15 and fetched["^BBB"].origin.startswith(root)


def test_list_files_sees_new_files_links_and_no_folders(store, tmp_path):
    storage, root = store
    folder = join(root, "listing")
    assert storage.list_files(folder) == []  # no such folder yet
    storage.write_bytes(join(folder, "a.json"), b"{}")
    storage.write_bytes(join(folder, "sub", "b.json"), b"{}")
    assert storage.list_files(folder) == [join(folder, "a.json")]
    storage.write_bytes(join(folder, "c.json"), b"{}")  # a listing is read afresh, not from a cache
    assert storage.list_files(folder) == [join(folder, "a.json"), join(folder, "c.json")]
    if root.startswith("file://"):
        target = tmp_path / "elsewhere.csv"
        target.write_text("x")
        (tmp_path / "listing" / "d.csv").symlink_to(target)
        assert join(folder, "d.csv") in storage.list_files(folder)


def test_a_dataset_written_in_batches_of_symbols_is_the_dataset_of_the_whole_frame(store):
    storage, root = store
    frame = many_symbols().sort_values(["symbol", "timestamp"], ignore_index=True)
    whole = storage.write_dataset(join(root, "whole"), frame, inputs={"raw": "abc"})
    symbols = sorted(frame["symbol"].unique())
    batches = (frame[frame["symbol"].isin(part)] for part in (symbols[:1], symbols[1:]))
    batched = storage.write_dataset_batches(join(root, "batched"), batches, inputs={"raw": "abc"})
    assert batched == whole
    pd.testing.assert_frame_equal(storage.read_dataset(join(root, "batched")), frame)


def test_a_dataset_written_from_tables_is_the_dataset_of_the_frame(store):
    """Tables (with or without pandas metadata, grouped by symbol or not) give the frame's files and
    manifest, byte for byte; a dataset reads back as a table with the rows of the frame."""
    storage, root = store
    frame = many_symbols()
    whole = storage.write_dataset(join(root, "frame"), frame, inputs={"raw": "abc"})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    batches = [
        table.slice(80).replace_schema_metadata(None),  # BRK/B, as Arrow-built tables come
        table.slice(0, 80).sort_by("timestamp"),  # MSFT and ^GSPC interleaved, each in time order
    ]
    uri = join(root, "tables")
    assert storage.write_dataset_batches(uri, batches, inputs={"raw": "abc"}) == whole
    assert storage.read_bytes(join(uri, "manifest.json")) == storage.read_bytes(
        join(root, "frame", "manifest.json")
    )
    pd.testing.assert_frame_equal(storage.read_dataset(uri), storage.read_dataset(join(root, "frame")))
    one = storage.read_dataset_table(uri, symbols=["^GSPC"])
    assert one.schema.field("symbol").type == pa.large_string()
    pd.testing.assert_frame_equal(one.to_pandas(), frame[frame.symbol == "^GSPC"].reset_index(drop=True))
    assert storage.read_dataset_table(uri).to_pandas().equals(storage.read_dataset(uri))


def test_plain_datasets_store_floats_uncompressed_with_statistics_on_the_key_columns_only(tmp_path):
    """Features are written PLAIN (floats do not compress): the values read back the same as from the
    compact default, and a reader can still filter on timestamp and symbol by their statistics."""
    storage, frame = Storage(), many_symbols()
    plain = storage.write_dataset_batches(f"file://{tmp_path}/plain", [frame], fmt=PLAIN)
    storage.write_dataset(f"file://{tmp_path}/compact", frame)
    pd.testing.assert_frame_equal(
        storage.read_dataset(f"file://{tmp_path}/plain"), storage.read_dataset(f"file://{tmp_path}/compact")
    )
    chunk = pq.ParquetFile(tmp_path / "plain" / plain["files"][0]).metadata.row_group(0)
    columns = {chunk.column(i).path_in_schema: chunk.column(i) for i in range(chunk.num_columns)}
    assert {c.compression for c in columns.values()} == {"UNCOMPRESSED"}
    assert columns["close"].statistics is None
    assert columns["timestamp"].statistics.has_min_max and columns["symbol"].statistics.has_min_max
