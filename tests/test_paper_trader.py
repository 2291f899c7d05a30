"""The paper trader on replayed bars against a stand-in policy endpoint over real HTTP (see
tests/paper_tools.py): parity with the backtester, every order kind, risk limits and kill switches,
the model-unavailable guard, several symbols, and the challenger in shadow mode."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rsc.core.execution import Costs, order_fill_price, simulate
from rsc.core.features import IndicatorRef
from rsc.monitor import MemorySink, names
from rsc.paper.app import build_trader, ledger_uri
from rsc.paper.decisions import PolicyDecisions
from rsc.paper.ledger import Ledger
from rsc.paper.service import CHALLENGER, CHAMPION
from rsc.registry.policy import Policy
from rsc.storage import Storage
from tests.helpers import synthetic_bars
from tests.paper_tools import StandinPolicy, paper_settings, register_version, store_bars


def always(action: int):
    return lambda bars, position: action


def run(tmp_path, *overrides, bars=None, policy_rule=None, sink=None, challenger=None, **standin):
    cfg = paper_settings(tmp_path, *overrides)
    frame = store_bars(cfg, bars)
    with StandinPolicy(rule=policy_rule or StandinPolicy.default_rule, **standin) as policy:
        trader = build_trader(cfg, sink or MemorySink(), endpoint=policy.url, challenger=challenger)
        outcome = trader.run()
    return cfg, frame, trader, outcome, list(trader.ledger.events()), policy


def of(events, kind, book=CHAMPION):
    return [e for e in events if e["type"] == kind and e.get("book", book) == book]


def test_market_orders_reproduce_the_backtester(tmp_path):
    cfg, frame, _, outcome, events, _ = run(
        tmp_path, "paper.bars=40", "env.spread_factor=0.5", "paper.risk.max_drawdown=null"
    )
    replayed = frame.tail(40).reset_index(drop=True)
    targets = [e["target"] for e in of(events, "decision")]
    assert len(targets) == 40 and 0 < sum(targets) < 40  # the rule goes long and flat
    costs = Costs(cfg.env.commission_bps, cfg.env.slippage_bps, cfg.env.spread_factor)
    expected = simulate(
        np.array(targets),
        replayed.open.to_numpy(),
        replayed.close.to_numpy(),
        costs,
        cfg.env.initial_cash,
        replayed.high.to_numpy(),
        replayed.low.to_numpy(),
    )
    marks = of(events, "mark")
    np.testing.assert_allclose([m["equity"] for m in marks], expected.equity, rtol=1e-12)
    np.testing.assert_allclose([m["cash"] for m in marks], expected.cash, rtol=1e-12, atol=1e-6)
    assert outcome.stopped == "end of feed" and outcome.bars == 40


def test_the_ledger_adds_up(tmp_path):
    cfg, _, _, outcome, events, _ = run(tmp_path, "paper.bars=30", "env.borrow_bps_per_year=50")
    fills, marks = of(events, "fill"), of(events, "mark")
    cash = cfg.env.initial_cash - sum(f["units"] * f["price"] + f["cost"] for f in fills)
    cash -= sum(m["borrow"] for m in marks)
    assert cash == pytest.approx(outcome.state.books[CHAMPION].cash, abs=1e-9 * cfg.env.initial_cash)
    for m in marks:
        assert m["cash"] + sum(u * m["prices"][s] for s, u in m["units"].items()) == pytest.approx(
            m["equity"]
        )
    ids = [f["id"] for f in fills]
    assert len(ids) == len(set(ids)) and set(ids) <= {o["id"] for o in of(events, "order")}
    assert outcome.state.books[CHAMPION].fills == len(fills)


@pytest.mark.parametrize("kind", ["limit", "stop", "stop_limit"])
def test_every_fill_is_at_the_price_its_order_kind_allows(tmp_path, kind):
    _, _, _, _, events, _ = run(
        tmp_path,
        "paper.bars=60",
        f"paper.order_type={kind}",
        "paper.limit_offset_bps=20",
        "paper.stop_offset_bps=5",
    )
    orders = {o["id"]: o for o in of(events, "order")}
    bar = None
    outcomes = {"fill": 0, "expire": 0}
    for event in events:
        if event["type"] == "bar":
            bar = event["bars"]["SYN"]
        if event["type"] in outcomes and event.get("id"):
            order = orders[event["id"]]
            price = order_fill_price(
                kind, order["side"], order["limit"], order["stop"], bar["open"], bar["high"], bar["low"]
            )
            assert (price is None) == (event.get("reason") == "price not reached")
            if event["type"] == "fill":
                assert event["price"] == price
            outcomes[event["type"]] += 1
    assert outcomes["fill"] > 0 and outcomes["expire"] > 0  # both happen over 60 bars


def test_position_limit_and_leverage_scale_targets_over_several_symbols(tmp_path):
    bars = pd.concat([synthetic_bars(80, seed=1, symbol="AAA"), synthetic_bars(80, seed=2, symbol="BBB")])
    _, _, _, outcome, events, _ = run(
        tmp_path,
        "data.symbols=[AAA, BBB]",
        "paper.bars=20",
        "paper.risk.max_position=0.4",
        "paper.risk.max_leverage=0.6",
        bars=bars,
        policy_rule=always(1),
    )
    decisions = of(events, "decision")
    assert {d["symbol"] for d in decisions} == {"AAA", "BBB"}
    assert all(d["target_position"] == 1.0 and d["target"] == pytest.approx(0.3) for d in decisions)
    book = outcome.state.books[CHAMPION]
    assert book.weight("AAA") == pytest.approx(0.3, abs=0.02) and book.weight("BBB") == pytest.approx(
        0.3, abs=0.02
    )
    assert not of(events, "reject")


@pytest.mark.parametrize(
    ("limit", "drop", "reason"),
    [
        ("paper.risk.max_drawdown=0.05", 0.015, "drawdown"),
        ("paper.risk.max_daily_loss=0.03", 0.0, "daily loss"),
    ],
)
def test_kill_switch_flattens_stops_and_stays_stopped(tmp_path, limit, drop, reason):
    bars = synthetic_bars(60, drift=-drop, seed=4, volatility=0.001)
    if not drop:  # one crash day of -6% in the middle of the replay
        bars.loc[50:, ["open", "high", "low", "close"]] *= 0.94
    sink = MemorySink()
    cfg, _, trader, outcome, events, _ = run(
        tmp_path,
        "paper.bars=20",
        "paper.risk.max_drawdown=null",
        "paper.risk.max_daily_loss=null",
        limit,
        bars=bars,
        policy_rule=always(1),
        sink=sink,
    )
    book = outcome.state.books[CHAMPION]
    assert outcome.stopped.startswith(f"halted: {reason}") and book.halted.startswith(reason)
    assert book.units == {"SYN": 0.0} and book.cash == book.equity
    (last_fill,) = [f for f in of(events, "fill") if f["reason"] == "kill_switch"]
    assert last_fill["position"] == 0.0 and last_fill["price"] == of(events, "mark")[-1]["prices"]["SYN"]
    assert events[-1]["type"] == "guard" and events[-1]["status"] == "critical"
    assert outcome.bars < 20  # it stopped before the end of the feed
    assert any(e.alert_type == "error" and "kill switch" in e.title for e in sink.events)
    last = {check.name: check.status for check in sink.checks}  # each check's latest state
    assert last[names.CHECKS["risk"]] == "critical"
    segments = trader.ledger.segments()
    again = build_trader(cfg, MemorySink(), endpoint="http://127.0.0.1:9").run()  # no endpoint needed
    assert again.bars == 0 and again.stopped.startswith("halted") and trader.ledger.segments() == segments


def test_model_unavailable_holds_alerts_and_recovers(tmp_path):
    sink = MemorySink()
    _, _, _, outcome, events, _ = run(
        tmp_path, "paper.bars=6", "paper.risk.model_retries=1", policy_rule=always(1), sink=sink, fail=4
    )
    decisions = of(events, "decision")
    assert [d["status"] for d in decisions] == ["hold", "hold", "ok", "ok", "ok", "ok"]
    assert decisions[0]["reason"].startswith("model unavailable") and "503" in decisions[0]["reason"]
    assert not [
        o for o in of(events, "order") if o["id"].endswith(("-1-SYN", "-2-SYN"))
    ]  # no orders while holding
    guards = [(e["check"], e["status"]) for e in of(events, "guard")]
    assert guards == [("model", "critical"), ("model", "ok")]
    assert [e.alert_type for e in sink.events] == ["error", "success"]
    errors = [m for m in sink.metrics if m.name == names.PAPER_ERRORS]
    assert len(errors) == 2 and all(m.tags["kind"] == "model" for m in errors)
    assert outcome.state.guard("model") == "ok"


def test_an_endpoint_down_all_along_trades_nothing(tmp_path):
    cfg, _, _, outcome, events, _ = run(tmp_path, "paper.bars=5", "paper.risk.model_retries=2", down=True)
    assert {d["status"] for d in of(events, "decision")} == {"hold"}
    assert not of(events, "order") and outcome.state.books[CHAMPION].equity == cfg.env.initial_cash
    assert outcome.state.guard("model") == "critical"


def test_units_sizing_rejects_a_buy_the_gap_up_makes_unaffordable(tmp_path):
    bars = synthetic_bars(60, seed=5, volatility=0.001)
    bars.loc[55, "open"] = bars.loc[54, "close"] * 1.15  # gap up after the first decision, on bar 54
    bars.loc[55, "high"] = max(bars.loc[55, "high"], bars.loc[55, "open"])
    _, _, _, _, events, _ = run(
        tmp_path,
        "paper.bars=6",
        "paper.sizing=units",
        "paper.risk.max_position=2",  # so that cash, not the position limit, is what refuses the buy
        bars=bars,
        policy_rule=always(1),
        positions=[0.0, 0.9],  # 10% of cash left for the day-to-day moves
    )
    orders = of(events, "order")
    assert all(o["quantity"] == float(int(o["quantity"])) and o["target_weight"] is None for o in orders)
    (rejected,) = of(events, "reject")
    assert rejected["id"] == orders[0]["id"]  # the first buy, decided on the close before the gap
    assert rejected["reason"].startswith("insufficient cash")
    fills = of(events, "fill")
    assert fills and all(f["units"] == float(int(f["units"])) for f in fills)


class UpBar(torch.nn.Module):
    """Action 1 (long) when the latest feature (the last bar's log return) is positive."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs[:, -3] > 0).long()


def tiny_policy() -> Policy:
    """A real Policy (TorchScript network, feature spec, scaler): long after an up bar, else flat."""

    spec = {
        "indicators": [IndicatorRef.of("log_return", 1).to_dict()],
        "window": 2,
        "positions": [0.0, 1.0],
        "scaler": {"mean": [0.0], "std": [1.0]},
    }
    return Policy(torch.jit.script(UpBar()), spec)


def test_shadow_challenger_trades_beside_the_champion_without_touching_it(tmp_path):
    sink = MemorySink()
    challenger = PolicyDecisions(tiny_policy(), "rsc-policy", 2)
    _, frame, _, outcome, events, _ = run(
        tmp_path / "shadow", "paper.bars=25", sink=sink, challenger=challenger
    )
    _, _, _, alone, _, _ = run(tmp_path / "alone", "paper.bars=25")
    champion = outcome.state.books[CHAMPION]
    # the shadow changes nothing of the champion's trading (only the challenger's equity is noted beside it)
    assert replace(champion, version_start={}) == replace(alone.state.books[CHAMPION], version_start={})
    shadow_decisions = of(events, "decision", CHALLENGER)
    closes = frame.close.to_numpy()
    went_up = (closes[-25:] > closes[-26:-1]).astype(float)
    assert [d["target"] for d in shadow_decisions] == went_up.tolist()
    shadow = outcome.state.books[CHALLENGER]
    assert shadow.model_version == 2 and shadow.fills > 0 and shadow.equity != champion.equity
    books = {m.tags["book"] for m in sink.metrics if m.name == names.PAPER_PNL}
    assert books == {CHAMPION, CHALLENGER}
    last_pnl = {m.tags["book"]: m.value for m in sink.metrics if m.name == names.PAPER_PNL}
    assert last_pnl == {CHAMPION: pytest.approx(champion.pnl), CHALLENGER: pytest.approx(shadow.pnl)}


def test_stop_request_commits_the_bar_in_hand_and_a_restart_finishes_the_same(tmp_path):
    cfg = paper_settings(tmp_path, "paper.bars=30")
    store_bars(cfg)
    with StandinPolicy() as policy:
        trader = build_trader(cfg, MemorySink(), endpoint=policy.url)
        source = trader.sources[CHAMPION]
        original = source.decide

        def decide_then_stop(*args):
            if len(trader.ledger.segments()) == 11:
                trader.request_stop()  # as SIGTERM would, in the middle of a bar
            return original(*args)

        source.decide = decide_then_stop
        first = trader.run()
        assert first.stopped == "stop requested" and first.bars == 11
        assert trader.ledger.load().to_json() == first.state.to_json()
        rest = build_trader(cfg, MemorySink(), endpoint=policy.url).run()
        whole = build_trader(
            paper_settings(tmp_path, "paper.bars=30", "paper.session=whole"),
            MemorySink(),
            endpoint=policy.url,
        ).run()
    assert first.bars + rest.bars == 30
    assert rest.state.to_json() == whole.state.to_json()


def test_registry_decisions_and_the_shadow_challenger_come_from_mlflow(tmp_path):
    """``paper.decisions: registry`` and ``paper.shadow``: both books load their policy through MLflow
    (SQLite in the storage root), by alias."""
    from rsc.registry.tracking import set_alias

    cfg = paper_settings(tmp_path, "paper.bars=12", "paper.decisions=registry", "paper.shadow=true")
    frame = store_bars(cfg)
    version = register_version(cfg, tiny_policy(), frame)  # the new version is the challenger
    set_alias(cfg.model_name, CHAMPION, version)
    outcome = build_trader(cfg, MemorySink()).run()
    events = list(Ledger(Storage(), ledger_uri(cfg)).events())
    closes = frame.close.to_numpy()
    went_up = (closes[-12:] > closes[-13:-1]).astype(float).tolist()
    for book in (CHAMPION, CHALLENGER):
        decisions = of(events, "decision", book)
        assert [d["target"] for d in decisions] == went_up
        assert {(d["model_name"], d["model_version"]) for d in decisions} == {(cfg.model_name, version)}
    champion, challenger = outcome.state.books[CHAMPION], outcome.state.books[CHALLENGER]
    # One model, one feed, one broker: one result (only the pending orders' ids name their book).
    assert (champion.cash, champion.units, champion.equity) == (
        challenger.cash,
        challenger.units,
        challenger.equity,
    )
    assert champion.fills == challenger.fills > 0
