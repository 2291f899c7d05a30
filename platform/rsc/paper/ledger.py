"""The append-only ledger: one immutable segment object per bar, on ``file://`` or ``s3://``.

An object on S3 cannot be appended to, so the ledger is a folder of segments named by a
zero-padded sequence number (``segments/000000000042.json``: ``{"seq": 42, "events": [...]}``).
A segment holds every event of one bar (the bar, the fills of the orders placed on the bar before,
the marks, the decisions and the new orders) and is written in one atomic write (a rename locally,
one PUT on S3) *before* the trader's state moves on: a crash either loses the whole bar, which a
restart then processes again from the same inputs, or none of it. Nothing is ever rewritten, so no
fill can be lost or counted twice. Segment 0 holds the ``start`` event.

Every ``snapshot_every`` segments the state after a segment is written to ``snapshots/<seq>.json``;
a restart loads the latest snapshot and applies only the segments after it. A snapshot is derived
data: deleting them all changes nothing but the time a restart takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from rsc.paper.state import LedgerEvent, PaperState, apply_segment
from rsc.storage import Storage, join

SEGMENTS, SNAPSHOTS = "segments", "snapshots"
DIGITS = 12


class LedgerError(RuntimeError):
    """A ledger that cannot be trusted: a gap in the segments, a foreign or unreadable object."""


def _name(seq: int) -> str:
    return f"{seq:0{DIGITS}d}.json"


class Ledger:
    def __init__(self, storage: Storage, uri: str):
        self.storage, self.uri = storage, uri.rstrip("/")

    def _numbers(self, folder: str) -> list[int]:
        """Sequence numbers of the objects in ``folder`` (temporary files of a crashed write ignored)."""
        numbers = []
        for uri in self.storage.list_files(join(self.uri, folder)):
            name = uri.rsplit("/", 1)[-1]
            if ".tmp-" in name:
                continue
            stem = name.removesuffix(".json")
            if not (name.endswith(".json") and stem.isdigit() and len(stem) == DIGITS):
                raise LedgerError(f"{join(self.uri, folder, name)}: not a ledger object name")
            numbers.append(int(stem))
        return sorted(numbers)

    def segments(self) -> list[int]:
        """Sequence numbers present, checked to run 0, 1, 2, ... without a gap."""
        numbers = self._numbers(SEGMENTS)
        for expected, seq in enumerate(numbers):
            if seq != expected:
                raise LedgerError(f"{self.uri}: segment {expected} is missing (found {seq} after it)")
        return numbers

    def read(self, seq: int) -> list[LedgerEvent]:
        uri = join(self.uri, SEGMENTS, _name(seq))
        try:
            body = json.loads(self.storage.read_bytes(uri))
        except (ValueError, UnicodeDecodeError) as error:
            raise LedgerError(f"{uri}: unreadable segment: {error}") from error
        if not isinstance(body, dict) or body.get("seq") != seq or not isinstance(body.get("events"), list):
            raise LedgerError(f"{uri}: not segment {seq} of a ledger")
        return body["events"]

    def append(self, seq: int, events: list[LedgerEvent]) -> None:
        """Write segment ``seq``; refuses to replace one (two writers on one ledger)."""
        uri = join(self.uri, SEGMENTS, _name(seq))
        if self.storage.exists(uri):
            raise LedgerError(f"{uri} already exists: is another paper trader writing this ledger?")
        payload = json.dumps({"seq": seq, "events": events}, allow_nan=False, separators=(",", ":"))
        self.storage.write_bytes(uri, payload.encode())

    def write_snapshot(self, state: PaperState) -> None:
        """The state after segment ``state.seq - 1``."""
        uri = join(self.uri, SNAPSHOTS, _name(state.seq - 1))
        self.storage.write_bytes(uri, json.dumps(state.to_json(), allow_nan=False).encode())

    def clear(self) -> None:
        """Remove the whole ledger (``rsc run`` replays afresh); never called on a running trader's."""
        fs, path = self.storage.filesystem(self.uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.invalidate_cache(path)

    def events(self) -> Iterator[LedgerEvent]:
        """Every event, in ledger order."""
        for seq in self.segments():
            yield from self.read(seq)

    def load(self) -> PaperState | None:
        """The state after the last segment (None for an empty ledger): latest snapshot, then the rest."""
        numbers = self.segments()
        if not numbers:
            return None
        state = PaperState()
        snapshots = [seq for seq in self._numbers(SNAPSHOTS) if seq <= numbers[-1]]
        if snapshots:
            uri = join(self.uri, SNAPSHOTS, _name(snapshots[-1]))
            state = PaperState.from_json(self.storage.read_json(uri))
            if state.seq != snapshots[-1] + 1:
                raise LedgerError(f"{uri}: snapshot of segment {state.seq - 1}, not {snapshots[-1]}")
        for seq in numbers[state.seq :]:
            apply_segment(state, seq, self.read(seq))
        return state
