"""``rsc schedule``: the interval loop (no overlap, failures reported, the schedule goes on) and the whole
DAG run twice on a short schedule, each run its own execution."""

from __future__ import annotations

import pytest

from rsc.cli.main import main
from rsc.launch.schedule import parse_every, run_on_schedule
from rsc.storage import Storage, join
from tests.conftest import CONFIGS


class FakeClock:
    """Time that moves only when slept or when a run takes long."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("6h", 21_600), ("1d", 86_400)])
def test_intervals(text, seconds):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "5", "1w", "-1h", "daily"])
def test_bad_intervals_say_what_is_accepted(text):
    with pytest.raises(ValueError, match=r"e\.g\. 30s, 15m, 6h or 1d"):
        parse_every(text)


def test_runs_start_every_interval_never_overlap_and_outlive_a_failure():
    clock = FakeClock()
    durations = iter([10.0, 130.0, 5.0, 1.0])  # the second run takes longer than the interval

    def run_once() -> str:
        number = len(ticks_seen) + 1
        clock.now += next(durations)
        if number == 3:
            raise RuntimeError("ingest failed")
        return f"run-{number}"

    ticks_seen: list = []
    ticks = run_on_schedule(run_once, 60.0, 4, ticks_seen.append, clock.sleep, lambda: clock.now)
    assert [t.run_id for t in ticks] == ["run-1", "run-2", None, "run-4"]
    assert ticks[2].error == "RuntimeError: ingest failed" and ticks == ticks_seen
    # run 1 at 0 (10 s), run 2 at 60 (130 s, past the next start), run 3 at once at 190, run 4 at 250
    assert clock.sleeps == [50.0, 55.0]


def test_a_fixed_run_id_is_refused(tmp_path, capsys):
    args = [str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"), f"storage.root=file://{tmp_path}"]
    assert main(["schedule", *args, "run.id=fixed", "--every", "1s", "--times", "1"]) == 2
    assert "run.id is set" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_rsc_schedule_runs_the_dag_twice_as_two_executions(tmp_path, ray_session, capsys):
    from ray import serve

    from tests.test_e2e import free_port

    args = [str(CONFIGS / "base.yaml"), str(CONFIGS / "smoke.yaml"), f"storage.root=file://{tmp_path}"]
    args += ["monitor.enabled=false", f"ray.address={ray_session.address}", f"serve.port={free_port()}"]
    args += ["tune.enabled=false", "train.iterations=1", "paper.bars=5"]
    try:
        assert main(["schedule", *args, "--every", "1s", "--times", "2"]) == 0
    finally:
        serve.shutdown()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("rsc schedule: #")]
    assert len(lines) == 2 and lines[0].startswith("rsc schedule: #1 run ") and "the next in 1s" in lines[0]
    ids = [line.split()[4] for line in lines]
    assert len(set(ids)) == 2
    storage = Storage()
    for run_id in ids:  # each execution wrote its own evaluation
        assert storage.exists(join(f"file://{tmp_path}", "smoke", run_id, "evaluation", "metrics.json"))
