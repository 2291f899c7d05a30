"""Executions of a named run: each gets an id and a root of its own, and the name points at the latest.

A user names runs (``run.name``); every execution of one (``rsc run``, a Kubeflow run) writes under
``<root>/<name>/<id>/``, so two executions started at once never share a file, and the register step
finds its own training run. ``<root>/<name>/latest.json`` names the latest execution, which is what
``rsc report NAME``, ``rsc train --resume`` and the paper trader address by the name. A run root made
before ids existed (``<root>/<name>/bars/...`` with no pointer) is still addressed as it was.
"""

from __future__ import annotations

import secrets
import time

from rsc.config import Settings
from rsc.storage import Storage, join

LATEST = "latest.json"


def new_run_id() -> str:
    """``20261204-193000-a1b2c3``: sorts by start time, unique without coordination."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def _with_id(cfg: Settings, run_id: str) -> Settings:
    return cfg.model_copy(update={"run": cfg.run.model_copy(update={"id": run_id})})


def pointer_uri(cfg: Settings) -> str:
    return join(cfg.storage.root, cfg.run.name, LATEST)


def start_execution(cfg: Settings, run_id: str | None = None) -> Settings:
    """``cfg`` with an execution id (its own, else ``run_id``, else a new one), recorded as the latest."""
    execution = cfg.run.id or run_id or new_run_id()
    cfg = _with_id(cfg, execution)
    Storage.from_settings(cfg.storage).write_json(pointer_uri(cfg), {"id": execution})
    return cfg


def latest_execution(cfg: Settings) -> Settings:
    """``cfg`` addressed by its name: the latest execution's id when it names none and one exists."""
    if cfg.run.id is not None:
        return cfg
    storage = Storage.from_settings(cfg.storage)
    uri = pointer_uri(cfg)
    if not storage.exists(uri):
        return cfg
    return _with_id(cfg, str(storage.read_json(uri)["id"]))
