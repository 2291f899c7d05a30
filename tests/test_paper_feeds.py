"""Feeds: the replay of stored bars, and Yahoo's chart endpoint polled live, on recorded responses
replayed over HTTP on 127.0.0.1 (tests/data/yahoo/GOOG.json: 40 daily bars from 2012-02-01), with
a clock the test moves; the stale-data guard of the trader on top of the live feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from rsc.config.settings import YahooSettings
from rsc.data.sources import SourceError
from rsc.monitor import MemorySink, ServiceCheck, names
from rsc.paper.decisions import HttpDecisions
from rsc.paper.feeds import LiveFeed, ReplayFeed
from rsc.paper.ledger import Ledger
from rsc.paper.service import PaperTrader
from rsc.storage import Storage
from tests.helpers import synthetic_bars
from tests.paper_tools import StandinPolicy, paper_settings
from tests.test_sources import RECORDED, ChartServer

DAY = 86_400.0


class Clock:
    def __init__(self, when: str):
        self.t = pd.Timestamp(when, tz="UTC").timestamp()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def chart() -> Iterator[ChartServer]:
    import threading

    server = ChartServer()
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def ranged_chart() -> Iterator[ChartServer]:
    import threading

    server = ChartServer(honour_range=True)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def live_feed(chart: ChartServer, tmp_path, clock: Clock, **settings) -> LiveFeed:
    yahoo = YahooSettings(
        base_url=chart.url, cache_dir=str(tmp_path / "cache"), requests_per_second=1000, **settings
    )
    return LiveFeed(yahoo, ("GOOG",), lookback_days=120, poll_s=0.001, clock=clock)


def test_replay_feed_resumes_after_the_ledger_point_and_paces_itself():
    bars = pd.concat([synthetic_bars(30, seed=1, symbol="A"), synthetic_bars(30, seed=2, symbol="B")])
    feed = ReplayFeed(bars, count=10, speed=4.0)
    stamps = sorted(bars.timestamp.unique())
    assert feed.history(None).timestamp.max() == stamps[19] and len(feed.history(None)) == 40
    waited: list[float] = []
    steps = list(feed.steps(None, waited.append))
    assert [s.timestamp for s in steps] == stamps[20:] and waited == [0.25] * 9
    assert set(steps[0].bars) == {"A", "B"} and steps[0].age_s == 0.0
    resumed = list(feed.steps(pd.Timestamp(stamps[24]), waited.append))
    assert [s.timestamp for s in resumed] == stamps[25:]
    assert feed.history(pd.Timestamp(stamps[24])).timestamp.max() == stamps[24]
    with pytest.raises(ValueError, match="replay of 31 bars, but the data holds only 30"):
        ReplayFeed(bars, count=31)


def test_live_feed_emits_complete_new_bars_only(chart, tmp_path):
    clock = Clock("2012-03-01 12:00")
    feed = live_feed(chart, tmp_path, clock)
    history = feed.history(None)
    assert history.timestamp.max() == pd.Timestamp("2012-02-29")  # 1 March is still trading
    assert len(history) == 20 and list(history.symbol.unique()) == ["GOOG"]
    waits = iter([DAY, DAY, DAY, 3 * DAY])

    def wait(seconds: float) -> None:
        assert seconds == 0.001  # poll_s
        clock.t += next(waits)

    steps = feed.steps(None, wait)
    first, second, nothing, then = next(steps), next(steps), next(steps), next(steps)
    assert first.timestamp == pd.Timestamp("2012-03-01") and first.age_s == pytest.approx(DAY / 2)
    assert second.timestamp == pd.Timestamp("2012-03-02")  # polled on Saturday
    assert nothing is None  # Sunday: no new bar
    assert then.timestamp == pd.Timestamp("2012-03-05")  # Wednesday noon: Monday's and Tuesday's bars
    assert next(steps).timestamp == pd.Timestamp("2012-03-06")
    recorded = json.loads((RECORDED / "GOOG.json").read_text())["chart"]["result"][0]
    march_1 = len(history)  # the 21st recorded bar
    assert first.bars["GOOG"].close == pytest.approx(
        recorded["indicators"]["adjclose"][0]["adjclose"][march_1]
    )
    assert len(chart.requests) == 5  # one request per poll: the response cache is off for live data
    starts = [
        str(pd.Timestamp(int(parse_qs(urlparse(p).query)["period1"][0]), unit="s").date())
        for p in chart.requests
    ]
    # The history asks for the 120-day lookback; each later poll from two days before its last bar.
    assert starts == ["2011-11-02", "2012-02-27", "2012-02-28", "2012-02-29", "2012-02-29"]


def test_a_failed_poll_is_a_poll_with_nothing_new(chart, tmp_path):
    clock = Clock("2012-03-01 12:00")
    feed = live_feed(chart, tmp_path, clock, retries=0)
    feed.history(None)
    chart.script["GOOG"] = [503]
    assert next(feed.steps(None, lambda s: None)) is None and feed.failures == 1
    empty = live_feed(chart, tmp_path, Clock("2012-03-01"), retries=0)
    chart.script["GOOG"] = [503]
    with pytest.raises(SourceError, match="no history for"):
        empty.history(None)


def test_a_symbol_without_bars_in_the_poll_window_is_nothing_new_not_a_failure(ranged_chart, tmp_path):
    feed = live_feed(ranged_chart, tmp_path, Clock("2012-04-12 12:00"))
    restart = pd.Timestamp("2012-04-10")  # after the last recorded bar (28 March): nothing since
    assert feed.history(restart).timestamp.max() == pd.Timestamp("2012-03-28")
    assert next(feed.steps(restart, lambda s: None)) is None and feed.failures == 0


def trader_on(chart, tmp_path, clock: Clock, policy: StandinPolicy, sink, *overrides) -> PaperTrader:
    cfg = paper_settings(tmp_path, "data.symbols=[GOOG]", "paper.feed=live", *overrides)
    feed = live_feed(chart, tmp_path, clock)
    ledger = Ledger(Storage(), f"file://{tmp_path}/ledger")
    return PaperTrader(cfg, feed, ledger, HttpDecisions(policy.url), sink=sink, clock=clock)


def test_stale_bars_fill_and_mark_but_hold_decisions(chart, tmp_path):
    clock = Clock("2012-03-01 12:00")
    with StandinPolicy() as policy:
        trader = trader_on(chart, tmp_path, clock, policy, MemorySink(), "paper.risk.stale_after_s=172800")
        poll, polls = trader.feed.poll, []

        def away_after_the_first_poll():
            polls.append(1)
            if len(polls) == 2:  # the trader was away: the poll after the history finds a backlog
                clock.t += 10 * DAY
            return poll()

        trader.feed.poll = away_after_the_first_poll
        outcome = trader.run(max_bars=7)
    events = list(trader.ledger.events())
    decisions = [
        (e["timestamp"][:10], e["status"], e.get("reason")) for e in events if e["type"] == "decision"
    ]
    assert decisions[:6] == [
        (d, "hold", "stale data")
        for d in ("2012-03-01", "2012-03-02", "2012-03-05", "2012-03-06", "2012-03-07", "2012-03-08")
    ]
    assert decisions[6] == ("2012-03-09", "ok", None)  # 1.5 days old at the poll: fresh enough
    guards = [(e["check"], e["status"]) for e in events if e["type"] == "guard"]
    assert guards == [("data", "warning"), ("data", "ok")]
    assert sum(e["type"] == "mark" for e in events) == 7 and outcome.bars == 7


def test_no_bar_for_too_long_warns_on_the_data_check(chart, tmp_path):
    clock = Clock("2012-04-05 12:00")  # every recorded bar is history; no new one will come
    sink = MemorySink()
    with StandinPolicy() as policy:
        trader = trader_on(chart, tmp_path, clock, policy, sink, "paper.risk.stale_after_s=7200")
        send = sink.send

        def tick_and_watch(item):
            send(item)
            clock.t += 1800  # each poll takes the trader's clock half an hour on
            if (
                isinstance(item, ServiceCheck)
                and item.name == names.CHECKS["data"]
                and item.status == "warning"
            ):
                trader.request_stop()

        sink.send = tick_and_watch
        outcome = trader.run()
    assert outcome.stopped == "stop requested" and outcome.bars == 0
    (event,) = [e for e in trader.ledger.events() if e["type"] == "guard"]
    assert event["status"] == "warning" and event["message"].startswith("no new bar for")
    assert [e.alert_type for e in sink.events] == ["warning"]
