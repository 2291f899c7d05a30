"""Shared pieces of the paper-trading tests: a stand-in policy endpoint, settings, stored bars.

The stand-in answers ``GET /v1/model`` and ``POST /v1/act`` with the real endpoint's fields, over
real HTTP on 127.0.0.1, but decides with a fixed rule instead of a trained network: an edge
stand-in, so that a trader test takes seconds rather than a training run. The real endpoint is
exercised end to end by tests/test_e2e.py (``rsc run``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from rsc.config import Settings
from rsc.storage import Storage, join
from tests.conftest import smoke_settings
from tests.helpers import synthetic_bars

MIN_BARS = 12
POSITIONS = [0.0, 1.0]


def rule(bars: list[dict], position: float) -> int:
    """Long (action 1) when the last close is above the mean of the last 10 closes, else flat."""
    closes = [bar["close"] for bar in bars[-10:]]
    return int(closes[-1] > sum(closes) / len(closes))


class StandinPolicy:
    """An HTTP server on 127.0.0.1 shaped like the Serve endpoint; ``fail`` answers 503 that many times."""

    default_rule = staticmethod(rule)

    def __init__(
        self,
        model_version: int = 3,
        rule=rule,
        fail: int = 0,
        down: bool = False,
        positions=tuple(POSITIONS),
        model_name: str = "standin",
    ):
        self.calls = 0
        self.fail, self.down = fail, down
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _unavailable(self) -> bool:
                if owner.down or owner.fail > 0:
                    owner.fail = max(owner.fail - 1, 0)
                    self._send(503, {"detail": "no replica"})
                    return True
                return False

            def do_GET(self) -> None:
                if self._unavailable():
                    return
                self._send(
                    200,
                    {
                        "model_name": model_name,
                        "model_version": model_version,
                        "alias": "champion",
                        "window": 2,
                        "min_bars": MIN_BARS,
                        "feature_names": ["x"],
                        "positions": list(positions),
                    },
                )

            def do_POST(self) -> None:
                owner.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self._unavailable():
                    return
                if len(body["bars"]) < MIN_BARS:
                    self._send(422, {"detail": f"'bars' needs at least {MIN_BARS} bars"})
                    return
                action = owner.rule(body["bars"], body["position"])
                self._send(
                    200,
                    {
                        "action": action,
                        "target_position": positions[action],
                        "model_name": model_name,
                        "model_version": model_version,
                    },
                )

            def log_message(self, *args) -> None:
                pass

        self.rule = rule
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandinPolicy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def paper_settings(root, *overrides: str) -> Settings:
    """Smoke settings for a paper run on synthetic bars under ``root`` (no metrics, drift or decay)."""
    return smoke_settings(
        root,
        "run.name=paper",
        "data.symbols=[SYN]",
        "monitor.drift=false",
        "monitor.decay=false",
        "paper.risk.model_backoff_s=0.01",
        *overrides,
    )


def store_bars(cfg: Settings, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``frame`` (default: 120 synthetic SYN bars) as the run's bars dataset."""
    frame = synthetic_bars(120, seed=3) if frame is None else frame
    Storage.from_settings(cfg.storage).write_dataset(join(cfg.run_root, "bars"), frame)
    return frame


def register_version(cfg: Settings, policy, example: pd.DataFrame, metrics: dict | None = None) -> int:
    """``policy`` logged and registered under ``cfg.model_name`` in the run's MLflow (SQLite in the
    storage root), with ``metrics`` on its run (e.g. the test figures); returns the new version, which
    has the ``challenger`` alias."""
    import tempfile
    from pathlib import Path

    import torch

    from rsc.core.schema import NETWORK_FILE, POLICY_FILE
    from rsc.registry.tracking import configure, log_policy, register_policy

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "policy"
        folder.mkdir()
        torch.jit.save(policy.network, str(folder / NETWORK_FILE))
        (folder / POLICY_FILE).write_text(policy.spec.to_json())
        configure(cfg.tracking_uri, "paper-test", join(cfg.storage.root, "mlartifacts"))
        uri, _ = log_policy(folder, example.tail(policy.min_bars), {}, metrics or {}, {}, {}, "paper-test")
    return register_policy(uri, cfg.model_name)
