"""The money path with small hand-computed numbers and invariants."""

import numpy as np
import pytest

from rsc.core.execution import Costs, Portfolio, equity, fill, rebalance, simulate
from rsc.core.metrics import max_drawdown, sharpe, total_return


def test_rebalance_hand_computed():
    # 10,000 cash, go 50% long at 100 with 10 bps total cost: buy 50 units = 5,000 notional, cost 5.
    portfolio, cost = rebalance(Portfolio(10_000.0), 0.5, 100.0, Costs(commission_bps=7, slippage_bps=3))
    assert portfolio.units == pytest.approx(50.0)
    assert cost == pytest.approx(5.0)
    assert portfolio.cash == pytest.approx(10_000 - 5_000 - 5)
    assert equity(portfolio, 110.0) == pytest.approx(4_995 + 50 * 110)


@pytest.mark.parametrize(
    ("units", "entry", "target", "price", "expected"),
    [
        (0.0, 0.0, 10.0, 100.0, 100.0),  # opening: the fill price
        (10.0, 100.0, 30.0, 120.0, (10 * 100 + 20 * 120) / 30),  # adding: weighted
        (30.0, 110.0, 5.0, 90.0, 110.0),  # reducing: kept
        (5.0, 110.0, -5.0, 90.0, 90.0),  # flipping: the fill price
        (-5.0, 90.0, 0.0, 80.0, 0.0),  # closing: none
        (-5.0, 90.0, -5.0, 80.0, 90.0),  # no trade: kept, at no cost
    ],
)
def test_fill_carries_the_average_entry_price(units, entry, target, price, expected):
    cash, after, new_entry, cost = fill(1_000.0, units, entry, target, price, 0.001)
    assert after == target and new_entry == pytest.approx(expected)
    assert cost == pytest.approx(abs(target - units) * price * 0.001)
    assert cash == pytest.approx(1_000.0 - (target - units) * price - cost)


def test_no_trade_no_cost():
    portfolio, cost = rebalance(Portfolio(1_000.0, 5.0), 5 * 100 / 1_500, 100.0, Costs(10, 10))
    assert cost == pytest.approx(0.0, abs=1e-9)
    assert portfolio.units == pytest.approx(5.0)


def test_always_long_without_costs_equals_buy_and_hold():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    open_ = close * np.exp(rng.normal(0, 0.003, 50))
    run = simulate(np.ones(50), open_, close, Costs(), 1_000.0)
    np.testing.assert_allclose(run.equity[1:], 1_000.0 * close[1:] / open_[1])
    assert run.costs.sum() == 0


def test_costs_are_never_negative_and_cash_plus_position_is_equity():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 100)))
    decisions = rng.choice([-1.0, 0.0, 0.5, 1.0], 100)
    run = simulate(decisions, close, close, Costs(5, 2), 10_000.0)
    assert (run.costs >= 0).all()
    np.testing.assert_allclose(run.cash + run.units * close, run.equity)


def test_metrics_hand_computed():
    curve = np.array([100.0, 110.0, 99.0, 108.9])
    assert total_return(curve) == pytest.approx(0.089)
    assert max_drawdown(curve) == pytest.approx(0.1)
    returns = np.array([0.1, -0.1, 0.1])
    assert sharpe(curve, periods_per_year=4, min_periods=2) == pytest.approx(
        returns.mean() / returns.std(ddof=1) * 2
    )
    assert sharpe(np.array([1.0, 1.0, 1.0])) == 0.0
