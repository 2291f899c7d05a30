"""Decay watch: is the champion's live record still what its backtest promised?

The backtest's figures (annualised Sharpe, maximum drawdown and bars per year of the test period) are
stored with the registered version; the paper trader's marks give the live returns of that version.
Every ``monitor.decay_every`` bars, over the latest ``monitor.decay_window`` bars the version traded:

- the live Sharpe, annualised as the backtest's is;
- the live drawdown below the window's peak;
- the PSR of the live returns against the backtest's Sharpe (Bailey & López de Prado): the probability
  that the live record's true Sharpe reaches the backtest's, given its length, skew and kurtosis.

An alert is raised when the PSR falls below ``monitor.decay_psr_alert`` (the backtest has become
improbable) or the drawdown passes ``monitor.decay_drawdown_factor`` times the backtest's maximum.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rsc.config.settings import MonitorSettings
from rsc.core import metrics
from rsc.evaluate.stats import probabilistic_sharpe_ratio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backtest:
    """A registered version's test-period figures (what the live record is held against)."""

    version: int
    sharpe: float  # annualised
    max_drawdown: float  # positive fraction
    periods_per_year: float


@dataclass(frozen=True)
class Decay:
    version: int
    bars: int  # live returns measured
    sharpe: float  # annualised, live
    drawdown: float  # live, below the window's peak
    psr: float  # P(true live Sharpe >= the backtest's)
    backtest: Backtest
    alert: str = ""  # why the live record is improbable under the backtest ("" when it is not)

    def to_json(self) -> dict[str, float | int | str]:
        return {
            "version": self.version,
            "bars": self.bars,
            "sharpe": self.sharpe,
            "drawdown": self.drawdown,
            "psr": self.psr,
            "backtest_sharpe": self.backtest.sharpe,
            "backtest_max_drawdown": self.backtest.max_drawdown,
            "alert": self.alert,
        }


def measure_decay(equity: np.ndarray, backtest: Backtest, psr_alert: float, drawdown_factor: float) -> Decay:
    """The figures of ``equity`` (one mark per bar, oldest first) against ``backtest``."""
    returns = metrics.bar_returns(np.asarray(equity, dtype=np.float64))
    periods = backtest.periods_per_year
    per_bar = metrics.sharpe_of_returns(returns, periods, 0.0, min_periods=2) / np.sqrt(periods)
    try:
        psr = probabilistic_sharpe_ratio(
            per_bar,
            len(returns),
            metrics.skew(returns),
            metrics.kurtosis(returns) + 3.0,
            benchmark=backtest.sharpe / np.sqrt(periods),
        )
    except ValueError as why:  # a degenerate record (e.g. every return equal): no probability
        log.warning("decay: no PSR for version %d: %s", backtest.version, why)
        psr = float("nan")
    drawdown = metrics.max_drawdown(equity)
    decay = Decay(backtest.version, len(returns), per_bar * np.sqrt(periods), drawdown, psr, backtest)
    reasons = []
    if psr < psr_alert:
        reasons.append(
            f"PSR {psr:.3f} below {psr_alert}: a live Sharpe of {decay.sharpe:.2f} over {decay.bars} bars "
            f"makes the backtest's {backtest.sharpe:.2f} improbable"
        )
    if backtest.max_drawdown > 0 and drawdown > drawdown_factor * backtest.max_drawdown:
        reasons.append(
            f"drawdown {drawdown:.1%} beyond {drawdown_factor} x the backtest's {backtest.max_drawdown:.1%}"
        )
    return Decay(**{**decay.__dict__, "alert": "; ".join(reasons)})


class DecayWatch:
    """The live record of each champion version, measured against that version's backtest."""

    def __init__(
        self,
        settings: MonitorSettings,
        backtest_of: Callable[[str, int], Backtest | None],
        publish: Callable[[str, int, dict], None] | None = None,
    ):
        """``backtest_of(model, version)``: the version's stored test figures; ``publish(model, version,
        record)``: where the latest live record goes (the registry, for reports)."""
        self.settings, self.backtest_of, self._publish = settings, backtest_of, publish
        self._backtests: dict[tuple[str, int], Backtest | None] = {}

    def measure(self, model: str, version: int, equity: list[float]) -> Decay | None:
        """Over the latest ``decay_window`` marks of ``version`` (None: too few yet, or no backtest)."""
        if len(equity) - 1 < self.settings.decay_min_bars:
            return None
        key = (model, version)
        if key not in self._backtests:
            try:
                self._backtests[key] = self.backtest_of(model, version)
            except Exception as error:  # the registry is down: try again at the next measurement
                log.warning("decay: no backtest figures for %s version %d: %s", model, version, error)
                return None
            if self._backtests[key] is None:
                log.warning("decay: %s version %d has no stored test figures; not measured", model, version)
        backtest = self._backtests[key]
        if backtest is None:
            return None
        window = np.asarray(equity[-(self.settings.decay_window + 1) :])
        return measure_decay(
            window, backtest, self.settings.decay_psr_alert, self.settings.decay_drawdown_factor
        )

    def publish(self, model: str, decay: Decay, until: str | None) -> None:
        """Store the live record beside the backtest; a failure is logged, never raised."""
        if self._publish is None:
            return
        try:
            self._publish(model, decay.version, {**decay.to_json(), "until": until})
        except Exception as error:
            log.warning("decay: could not publish the live record of %s v%d: %s", model, decay.version, error)
