"""The segment ledger on file:// and on s3:// (moto's server on 127.0.0.1): a trader that crashes
mid-run resumes to exactly the state of an uninterrupted run, snapshots change nothing but speed,
and a ledger that cannot be trusted is refused with the reason."""

from __future__ import annotations

import json

import pytest

from rsc.monitor import MemorySink
from rsc.paper.app import build_trader
from rsc.paper.ledger import Ledger, LedgerError
from rsc.paper.service import CHAMPION
from rsc.paper.state import PaperState, apply_segment
from rsc.storage import join
from tests.paper_tools import StandinPolicy, paper_settings, store_bars

BARS = 40


class Crash(Exception):
    """Stands for the process dying in the middle of a bar (after the decision, before the write)."""


@pytest.fixture(params=["file", "s3"])
def root(request, tmp_path, monkeypatch):
    """Storage overrides for a fresh root on the local disk or on the loopback S3 server."""
    if request.param == "file":
        return (f"storage.root=file://{tmp_path}",)
    endpoint = request.getfixturevalue("s3_endpoint")
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    name = request.node.name.replace("[", "-").replace("]", "")
    return (
        f"storage.root=s3://rsc-test/{name}",
        f"storage.s3_endpoint_url={endpoint}",
        "storage.s3_region=us-east-1",
    )


def settings(tmp_path, root, *overrides):
    return paper_settings(tmp_path, *root, f"paper.bars={BARS}", "paper.snapshot_every=7", *overrides)


def test_a_crash_mid_run_resumes_to_the_uninterrupted_state(tmp_path, root):
    cfg = settings(tmp_path, root)
    store_bars(cfg)
    with StandinPolicy() as policy:
        whole = build_trader(
            cfg.model_copy(update={"paper": cfg.paper.model_copy(update={"session": "whole"})}),
            MemorySink(),
            endpoint=policy.url,
        ).run()
        crashing = build_trader(cfg, MemorySink(), endpoint=policy.url)
        decide = crashing.sources[CHAMPION].decide
        calls = []

        def decide_or_die(*args):
            calls.append(1)
            if len(calls) == 23:
                raise Crash
            return decide(*args)

        crashing.sources[CHAMPION].decide = decide_or_die
        with pytest.raises(Crash):
            crashing.run()
        ledger = crashing.ledger
        assert ledger.segments() == list(range(23))  # start + 22 whole bars; the 23rd never written
        resumed = build_trader(cfg, MemorySink(), endpoint=policy.url).run()
    assert resumed.bars == BARS - 22
    assert resumed.state.to_json() == whole.state.to_json()
    assert ledger.load().to_json() == whole.state.to_json()
    fills = [e["id"] for e in ledger.events() if e["type"] == "fill"]
    assert fills and len(fills) == len(set(fills))
    stamps = [e["timestamp"] for e in ledger.events() if e["type"] == "bar"]
    assert len(stamps) == BARS and stamps == sorted(set(stamps))


def test_snapshots_are_only_a_shortcut(tmp_path, root):
    cfg = settings(tmp_path, root)
    store_bars(cfg)
    with StandinPolicy() as policy:
        outcome = build_trader(cfg, MemorySink(), endpoint=policy.url).run()
    ledger = Ledger(build_trader(cfg, MemorySink()).ledger.storage, outcome.ledger_uri)
    assert ledger._numbers("snapshots") == [6, 13, 20, 27, 34]
    folded = PaperState()
    for seq in ledger.segments():
        apply_segment(folded, seq, ledger.read(seq))
    assert folded.to_json() == ledger.load().to_json() == outcome.state.to_json()


def test_an_untrustworthy_ledger_is_refused(tmp_path):
    cfg = settings(tmp_path, (f"storage.root=file://{tmp_path}",), "paper.bars=8", "paper.snapshot_every=100")
    store_bars(cfg)
    with StandinPolicy() as policy:
        trader = build_trader(cfg, MemorySink(), endpoint=policy.url)
        trader.run()
    ledger = trader.ledger
    folder = tmp_path / "paper" / "paper" / "default" / "segments"
    (folder / "000000000004.json.tmp-0a1b").write_bytes(b'{"seq": 4, "ev')  # a crashed write's leftover
    assert ledger.load().seq == 9
    with pytest.raises(LedgerError, match="already exists: is another paper trader writing"):
        ledger.append(8, [])
    (folder / "000000000003.json").write_text(json.dumps({"seq": 2, "events": []}))
    with pytest.raises(LedgerError, match=r"000000000003\.json: not segment 3"):
        ledger.load()
    (folder / "000000000003.json").unlink()
    with pytest.raises(LedgerError, match="segment 3 is missing"):
        ledger.load()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(LedgerError, match=r"notes\.txt: not a ledger object name"):
        ledger.segments()


def test_a_ledger_resumes_only_with_the_symbols_and_books_it_started_with(tmp_path):
    cfg = settings(tmp_path, (f"storage.root=file://{tmp_path}",), "paper.bars=4")
    store_bars(cfg)
    with StandinPolicy() as policy:
        build_trader(cfg, MemorySink(), endpoint=policy.url).run()
        other = paper_settings(tmp_path, "paper.bars=4", "env.initial_cash=5000")
        with pytest.raises(LedgerError, match=r"started with symbols \['SYN'\].*use another paper.session"):
            build_trader(other, MemorySink(), endpoint=policy.url).run()
    assert Ledger(build_trader(cfg).ledger.storage, join(cfg.run_root, "paper", "default")).load().seq == 5
