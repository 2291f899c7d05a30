"""L1: URIs (file://, s3://), atomic writes, Parquet datasets with content-hashed manifests."""

from rsc.storage.store import Storage, join

__all__ = ["Storage", "join"]
