"""PSR, DSR and PBO against the worked numbers of their papers, hand-made cases and their limits."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from rsc.evaluate import stats
from rsc.evaluate.verdict import Evidence, headline, verdict

# Numerical example of Bailey and López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
# Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5): after
# N = 100 trials whose annualised Sharpe ratios have variance 1/2, the selected strategy shows an
# annualised Sharpe ratio of 2.5 over T = 1,250 daily returns (250 a year) with skewness -3 and
# kurtosis 10. The paper finds the expected maximum Sharpe ratio SR0 = 0.1132 (per day) and DSR = 0.9004.
PAPER_DAYS = 250
PAPER_SR = 2.5 / math.sqrt(PAPER_DAYS)
PAPER_VARIANCE = 0.5 / PAPER_DAYS


def test_expected_maximum_sharpe_of_the_dsr_paper():
    assert stats.expected_max_sharpe(100, PAPER_VARIANCE) == pytest.approx(0.1132, abs=5e-5)


def test_deflated_sharpe_ratio_of_the_dsr_paper():
    dsr = stats.deflated_sharpe_ratio(PAPER_SR, 1250, -3.0, 10.0, 100, PAPER_VARIANCE)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_dsr_is_the_psr_against_the_expected_maximum():
    sr0 = stats.expected_max_sharpe(100, PAPER_VARIANCE)
    assert stats.probabilistic_sharpe_ratio(PAPER_SR, 1250, -3.0, 10.0, sr0) == pytest.approx(
        stats.deflated_sharpe_ratio(PAPER_SR, 1250, -3.0, 10.0, 100, PAPER_VARIANCE)
    )


def test_psr_hand_computed_for_normal_returns():
    # Skew 0, kurtosis 3: PSR = Phi(SR * sqrt(n - 1) / sqrt(1 + SR^2 / 2)). SR 0.1 over 101 returns:
    # 0.1 * 10 / sqrt(1.005) = 0.99751.
    assert stats.probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0) == pytest.approx(
        norm.cdf(1 / math.sqrt(1.005))
    )
    assert stats.probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0, benchmark=0.1) == 0.5


def test_psr_penalises_negative_skew_and_fat_tails_and_rewards_length():
    base = stats.probabilistic_sharpe_ratio(0.1, 250, 0.0, 3.0)
    assert stats.probabilistic_sharpe_ratio(0.1, 250, -1.0, 3.0) < base
    assert stats.probabilistic_sharpe_ratio(0.1, 250, 0.0, 9.0) < base
    assert stats.probabilistic_sharpe_ratio(0.1, 1000, 0.0, 3.0) > base


def test_expected_maximum_matches_a_simulation_and_grows_with_trials():
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()  # best of 100 unit-variance draws
    assert stats.expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.02)
    assert stats.expected_max_sharpe(1, 1.0) == 0.0
    assert stats.expected_max_sharpe(10, 1.0) < stats.expected_max_sharpe(1000, 1.0)
    assert stats.expected_max_sharpe(100, 4.0) == pytest.approx(2 * stats.expected_max_sharpe(100, 1.0))


def test_sharpe_inputs_of_a_series():
    returns = np.array([0.1, -0.1, 0.1, 0.1])
    found = stats.sharpe_inputs(returns)
    assert found.sharpe == pytest.approx(0.5) and found.n == 4
    assert found.skew == pytest.approx(-2 / math.sqrt(3)) and found.kurtosis == pytest.approx(7 / 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0), "at least 2 returns"),
        (lambda: stats.probabilistic_sharpe_ratio(1.0, 100, 5.0, 3.0), "not positive"),
        (lambda: stats.expected_max_sharpe(0, 1.0), ">= 1"),
        (lambda: stats.expected_max_sharpe(10, -1.0), ">= 0"),
        (lambda: stats.sharpe_inputs(np.ones(10)), "no variance"),
        (lambda: stats.sharpe_inputs(np.ones(1)), "at least 2"),
    ],
)
def test_bad_inputs_say_why(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- PBO -----------------------------------------------------------------------------------------
def _block(mean: float) -> list[float]:
    """Two returns with this mean and a spread of 0.01: per-bar Sharpe = mean / (0.01 * sqrt(2))."""
    return [mean + 0.01, mean - 0.01]


def test_pbo_hand_computed_overfit():
    # Three trials (columns) A, B, C over two blocks of two bars. First block Sharpe order A > B > C,
    # second block C > B > A. Whichever block is in sample, its best is the worst out of sample:
    # rank 1 of 3, w = 1/4, logit log(1/3) in both combinations, so PBO = 1. A loses money out of
    # sample (second block), C does not (first block): probability of loss 1/2.
    returns = np.array(
        [_block(0.03) + _block(-0.01), _block(0.02) + _block(0.01), _block(0.01) + _block(0.02)]
    ).T
    found = stats.probability_of_backtest_overfitting(returns, n_splits=2)
    np.testing.assert_allclose(found.logits, [math.log(1 / 3)] * 2)
    assert found.pbo == 1.0
    assert found.probability_of_loss == 0.5
    np.testing.assert_allclose(found.in_sample, [0.03 / (0.01 * math.sqrt(2)), 0.02 / (0.01 * math.sqrt(2))])


def test_pbo_hand_computed_consistent():
    # A is best in both blocks: it is selected in sample and ranks 3 of 3 out of sample, logit log(3).
    returns = np.array(
        [_block(0.03) + _block(0.02), _block(0.02) + _block(0.01), _block(0.01) + _block(0.0)]
    ).T
    found = stats.probability_of_backtest_overfitting(returns, n_splits=2)
    np.testing.assert_allclose(found.logits, [math.log(3)] * 2)
    assert found.pbo == 0.0 and found.probability_of_loss == 0.0


def test_pbo_uses_every_half_of_sixteen_blocks():
    # Bailey, Borwein, López de Prado and Zhu (2017) split the matrix into S = 16 blocks, which gives
    # C(16, 8) = 12,870 combinations of in-sample halves.
    returns = np.random.default_rng(0).normal(0, 0.01, (320, 4))
    assert len(stats.probability_of_backtest_overfitting(returns, 16).logits) == 12_870


def test_pbo_of_trials_with_no_skill_is_about_one_half():
    # The paper's first experiment: when every trial is noise, selection in sample says nothing about
    # out of sample, and the logits are centred on 0.
    values = [
        stats.probability_of_backtest_overfitting(np.random.default_rng(s).normal(0, 0.01, (320, 10)), 8).pbo
        for s in range(30)
    ]
    assert 0.35 < np.mean(values) < 0.65


def test_pbo_of_one_skilled_trial_is_low():
    returns = np.random.default_rng(3).normal(0, 0.01, (480, 10))
    returns[:, 4] += 0.004
    assert stats.probability_of_backtest_overfitting(returns, 16).pbo < 0.05


@pytest.mark.parametrize(
    ("returns", "splits", "message"),
    [
        (np.zeros((40, 1)), 4, "N >= 2"),
        (np.zeros(40), 4, "N >= 2"),
        (np.zeros((40, 3)), 3, "even"),
        (np.zeros((7, 3)), 4, "at least 8 rows"),
        (np.full((40, 3), np.nan), 4, "finite"),
    ],
)
def test_pbo_bad_inputs(returns, splits, message):
    with pytest.raises(ValueError, match=message):
        stats.probability_of_backtest_overfitting(returns, splits)


def test_largest_even_splits():
    assert stats.largest_even_splits(1000) == 16
    assert stats.largest_even_splits(15) == 6
    assert stats.largest_even_splits(3) == 0


# -- verdict -------------------------------------------------------------------------------------
def _evidence(**changes) -> Evidence:
    base = Evidence(1.2, 0.8, 250, 0.97, 0.96, 20, 0.2, 0.9, 200, 0.95, {})
    return base._replace(**changes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "Evidence of skill"),
        ({"dsr": None}, "Evidence of skill, not yet discounted for the hyperparameter search"),
        ({"dsr": 0.6}, "Inconclusive"),
        ({"psr": 0.3, "dsr": 0.1}, "No evidence of skill"),
        ({"pbo": 0.7}, "Likely overfit"),
        ({"psr": None, "dsr": None}, "Not enough data for a verdict"),
    ],
)
def test_headline(changes, expected):
    assert headline(_evidence(**changes)) == expected


def test_verdict_says_what_is_missing():
    text = verdict(_evidence(dsr=None, pbo=None, notes={"pbo": "not available for this run: no series"}))
    assert "not available for this run: no series" in text
    assert "97%" in text and "90% of 200 random strategies" in text
