"""Storage on file:// and on s3:// (moto's server on 127.0.0.1): datasets, manifests, atomicity."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from rsc.cluster.local import free_port
from rsc.storage import Storage, join
from tests.helpers import synthetic_bars


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="rsc-test")
    yield endpoint
    server.stop()


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


def test_same_input_same_hash_on_every_filesystem(store, tmp_path):
    storage, root = store
    frame = synthetic_bars(80, seed=4)
    first = storage.write_dataset(join(root, "a"), frame)["sha256"]
    again = storage.write_dataset(join(root, "a"), frame)["sha256"]
    local = Storage().write_dataset(f"file://{tmp_path}/reference", frame)["sha256"]
    assert first == again == local


def test_failed_write_keeps_previous_version(store, monkeypatch):
    storage, root = store
    uri = join(root, "ds")
    storage.write_dataset(uri, synthetic_bars(20))

    def crash(self, uri, payload):
        raise OSError("disk full")

    monkeypatch.setattr(Storage, "write_json", crash)  # the manifest (the commit) never lands
    with pytest.raises(OSError):
        storage.write_dataset(uri, synthetic_bars(30, seed=9))
    monkeypatch.undo()
    assert len(storage.read_dataset(uri)) == 20


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


def test_unsupported_scheme():
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        Storage().read_bytes("gs://bucket/x")
