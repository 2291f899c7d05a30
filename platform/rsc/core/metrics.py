"""Performance metrics of an equity curve ``[T]`` and of the trades behind it.

Conventions, stated here once and used everywhere (the env's validation callback, the evaluate stage,
its report, MLflow and Datadog all call these functions):

- Returns are simple per-bar returns of equity marked at each close, ``r_t = E_t / E_{t-1} - 1``.
- Annualisation uses ``P = periods_per_year`` bars per year, which follows the bar frequency
  (:func:`infer_periods_per_year`: 252 for daily bars on weekdays, 365 for daily bars of a 24/7 market,
  bars-per-day times those for intraday bars) unless configured. Mean returns scale by ``P``, standard
  deviations by ``sqrt(P)``; CAGR compounds over ``n / P`` years for ``n`` returns.
- The risk-free rate is an annual simple rate ``rf``; per bar it is ``rf / P``, subtracted from every
  return for Sharpe, Sortino and alpha (and it is the Sortino target).
- Standard deviations are sample ones (``ddof=1``). The Sortino downside deviation is the standard one
  of Sortino and Price (1994): ``sqrt(mean(min(0, r - rf / P) ** 2))`` over all ``n`` returns, gains
  counting as zero.
- Drawdowns are positive fractions below the running peak; a drawdown's duration counts the bars from
  the peak until equity is back at the peak (or to the end of the data, if it never is).
- Skew is the Fisher-Pearson coefficient ``g1`` and kurtosis the excess kurtosis ``g2`` (0 for a normal
  distribution), both from biased moments; the probabilistic Sharpe ratio uses ``g2 + 3``.
- VaR and CVaR at 95% are historical, of one bar's return, and positive numbers for losses:
  ``VaR = -q`` with ``q`` the 5% quantile (linear interpolation), ``CVaR = -mean(r[r <= q])``.
- A trade is a round trip (:mod:`rsc.core.trades`); win rate is the fraction (0..1) of trades with a
  positive PnL; profit factor is gross profit over gross loss (currency); average win and average loss
  are mean trade returns (fractions of equity before entry) of winning and losing trades, the loss
  negative. Turnover is traded notional per year as a multiple of mean equity; exposure is the
  fraction of bars that end with a position.
- Minimum sample: annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar, turnover, alpha,
  information ratio) need at least ``min_periods`` returns (:data:`MIN_PERIODS` unless configured);
  with fewer they are 0.0.
- A ratio with a zero denominator (no variance, no drawdown, no losing trade, no trade) is 0.0, and so
  is any figure of an empty sample: every figure is a finite number, never ``inf`` or ``NaN``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MIN_PERIODS = 20
VAR_LEVEL = 0.95
TRADING_DAYS = 252
CALENDAR_DAYS = 365
_TINY = 1e-12


class Annualisation(NamedTuple):
    """Bars per year and the reason, for the report."""

    periods_per_year: float
    description: str


def infer_periods_per_year(timestamps: np.ndarray) -> Annualisation:
    """Bars per year from the bars' spacing and calendar.

    Daily bars that skip weekends get 252 (trading days), daily bars that include weekends 365 (a 24/7
    market); intraday bars get the median number of bars per day times that; weekly bars 52, monthly 12.

    Args:
        timestamps: ``[T]`` bar times (datetime64), increasing.
    """
    stamps = np.asarray(timestamps).astype("datetime64[s]")
    if len(stamps) < 2:
        return Annualisation(float(TRADING_DAYS), f"{TRADING_DAYS} bars per year: assumed, too few bars")
    seconds = np.diff(stamps).astype(np.int64)
    spacing = float(np.median(seconds[seconds > 0])) if (seconds > 0).any() else 86_400.0
    days = stamps.astype("datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    every_day = bool((weekday >= 5).any())
    per_year = CALENDAR_DAYS if every_day else TRADING_DAYS
    calendar = (
        f"{per_year} days a year: a 24/7 market (weekend bars present)"
        if every_day
        else f"{per_year} trading days a year (no weekend bars)"
    )
    if spacing >= 25 * 86_400:
        return Annualisation(12.0, "12 bars per year: monthly bars")
    if spacing >= 5 * 86_400:
        return Annualisation(52.0, "52 bars per year: weekly bars")
    if spacing >= 20 * 3_600:
        return Annualisation(float(per_year), f"{per_year} bars per year: daily bars, {calendar}")
    _, counts = np.unique(days, return_counts=True)
    per_day = float(np.median(counts))
    return Annualisation(
        per_day * per_year, f"{per_day * per_year:g} bars per year: {per_day:g} bars a day, {calendar}"
    )


# -- returns and risk -------------------------------------------------------------------------------
def bar_returns(equity: np.ndarray) -> np.ndarray:
    """``[T]`` equity -> ``[T - 1]`` simple returns."""
    equity = np.asarray(equity, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0


def total_return(equity: np.ndarray) -> float:
    return float(equity[-1] / equity[0] - 1.0) if len(equity) else 0.0


def _enough(n: int, min_periods: int) -> bool:
    return n >= max(min_periods, 2)


def cagr(equity: np.ndarray, periods_per_year: float = 252.0, min_periods: int = MIN_PERIODS) -> float:
    """Compound annual growth rate over ``n / P`` years; -1.0 after a total loss."""
    n = len(equity) - 1
    if not _enough(n, min_periods):
        return 0.0
    growth = equity[-1] / equity[0]
    return float(growth ** (periods_per_year / n) - 1.0) if growth > 0 else -1.0


def annual_volatility(
    equity: np.ndarray, periods_per_year: float = 252.0, min_periods: int = MIN_PERIODS
) -> float:
    returns = bar_returns(equity)
    if not _enough(len(returns), min_periods):
        return 0.0
    return float(returns.std(ddof=1) * np.sqrt(periods_per_year))


def sharpe(
    equity: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """Annualised Sharpe ratio: mean excess return over its sample std, times ``sqrt(P)``."""
    return sharpe_of_returns(bar_returns(equity), periods_per_year, risk_free_rate, min_periods)


def sharpe_of_returns(
    returns: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """:func:`sharpe` of ``[n]`` per-bar returns."""
    excess = np.asarray(returns, dtype=np.float64) - risk_free_rate / periods_per_year
    if not _enough(len(excess), min_periods):
        return 0.0
    std = excess.std(ddof=1)
    return float(excess.mean() / std * np.sqrt(periods_per_year)) if std > _TINY else 0.0


def sortino(
    equity: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """Annualised Sortino ratio with the standard downside deviation (target = per-bar risk-free)."""
    excess = bar_returns(equity) - risk_free_rate / periods_per_year
    if not _enough(len(excess), min_periods):
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))
    return float(excess.mean() / downside * np.sqrt(periods_per_year)) if downside > _TINY else 0.0


def drawdowns(equity: np.ndarray) -> np.ndarray:
    """``[T]`` drawdown from the running peak, as a positive fraction."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak


def max_drawdown(equity: np.ndarray) -> float:
    return float(drawdowns(equity).max()) if len(equity) else 0.0


def max_drawdown_duration(equity: np.ndarray) -> int:
    """Longest number of bars spent below a running peak (peak bar excluded, recovery bar included)."""
    under = drawdowns(equity) > _TINY
    if not under.any():
        return 0
    # Length of each run of consecutive underwater bars; a run ending at the data's end still counts.
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    recovered = stops < len(under)
    return int(np.max(stops - starts + recovered))


def calmar(equity: np.ndarray, periods_per_year: float = 252.0, min_periods: int = MIN_PERIODS) -> float:
    """CAGR over maximum drawdown."""
    worst = max_drawdown(equity)
    return cagr(equity, periods_per_year, min_periods) / worst if worst > _TINY else 0.0


def _central_moments(returns: np.ndarray) -> tuple[float, float, float]:
    deviations = np.asarray(returns, dtype=np.float64) - np.mean(returns)
    return (float(np.mean(deviations**2)), float(np.mean(deviations**3)), float(np.mean(deviations**4)))


def skew(returns: np.ndarray) -> float:
    """Fisher-Pearson skewness ``g1`` of ``[n]`` returns (biased moments)."""
    if len(returns) < 2:
        return 0.0
    m2, m3, _ = _central_moments(returns)
    return m3 / m2**1.5 if m2 > _TINY**2 else 0.0


def kurtosis(returns: np.ndarray) -> float:
    """Excess kurtosis ``g2`` of ``[n]`` returns (biased moments; 0 for a normal distribution)."""
    if len(returns) < 2:
        return 0.0
    m2, _, m4 = _central_moments(returns)
    return m4 / m2**2 - 3.0 if m2 > _TINY**2 else 0.0


def value_at_risk(returns: np.ndarray, level: float = VAR_LEVEL) -> float:
    """Historical one-bar VaR as a positive loss fraction."""
    if len(returns) == 0:
        return 0.0
    return float(-np.quantile(returns, 1.0 - level)) + 0.0  # + 0.0: no "-0.0" for a flat curve


def conditional_value_at_risk(returns: np.ndarray, level: float = VAR_LEVEL) -> float:
    """Historical one-bar CVaR (expected shortfall) as a positive loss fraction."""
    if len(returns) == 0:
        return 0.0
    returns = np.asarray(returns, dtype=np.float64)
    return float(-returns[returns <= np.quantile(returns, 1.0 - level)].mean()) + 0.0


def rolling_sharpe(
    equity: np.ndarray, window: int, periods_per_year: float = 252.0, risk_free_rate: float = 0.0
) -> np.ndarray:
    """``[T]`` annualised Sharpe over the trailing ``window`` returns; NaN until the window is full."""
    excess = bar_returns(equity) - risk_free_rate / periods_per_year
    out = np.full(len(equity), np.nan)
    if window < 2 or len(excess) < window:
        return out
    sums = np.concatenate(([0.0], np.cumsum(excess)))
    squares = np.concatenate(([0.0], np.cumsum(excess**2)))
    total, total_sq = sums[window:] - sums[:-window], squares[window:] - squares[:-window]
    mean = total / window
    var = np.maximum((total_sq - window * mean**2) / (window - 1), 0.0)
    std = np.sqrt(var)
    safe = np.where(std > 1e-9, std, 1.0)
    out[window:] = np.where(std > 1e-9, mean / safe * np.sqrt(periods_per_year), 0.0)
    return out


# -- relative to a benchmark ------------------------------------------------------------------------
def beta(returns: np.ndarray, benchmark: np.ndarray) -> float:
    """OLS slope of ``[n]`` returns on the benchmark's ``[n]`` returns (sample covariance / variance)."""
    if len(returns) < 2:
        return 0.0
    variance = np.var(benchmark, ddof=1)
    return float(np.cov(returns, benchmark, ddof=1)[0, 1] / variance) if variance > _TINY**2 else 0.0


def alpha(
    returns: np.ndarray,
    benchmark: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """Annualised Jensen's alpha: ``P * (mean(r - rf) - beta * mean(b - rf))``."""
    if not _enough(len(returns), min_periods):
        return 0.0
    rf = risk_free_rate / periods_per_year
    excess, market = np.asarray(returns) - rf, np.asarray(benchmark) - rf
    return float(periods_per_year * (excess.mean() - beta(returns, benchmark) * market.mean()))


def information_ratio(
    returns: np.ndarray,
    benchmark: np.ndarray,
    periods_per_year: float = 252.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """Annualised mean active return over tracking error (sample std of the active return)."""
    return sharpe_of_returns(np.asarray(returns) - np.asarray(benchmark), periods_per_year, 0.0, min_periods)


# -- trades and activity ----------------------------------------------------------------------------
def win_rate(trade_pnl: np.ndarray) -> float:
    """Fraction (0..1) of trades with a positive PnL."""
    return float(np.mean(np.asarray(trade_pnl) > 0)) if len(trade_pnl) else 0.0


def profit_factor(trade_pnl: np.ndarray) -> float:
    """Gross profit over gross loss (both in currency)."""
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    loss = -pnl[pnl < 0].sum()
    return float(pnl[pnl > 0].sum() / loss) if loss > _TINY else 0.0


def average_win(trade_return: np.ndarray) -> float:
    wins = np.asarray(trade_return)[np.asarray(trade_return) > 0]
    return float(wins.mean()) if len(wins) else 0.0


def average_loss(trade_return: np.ndarray) -> float:
    """Mean return of losing trades (a negative number; 0.0 without losing trades)."""
    losses = np.asarray(trade_return)[np.asarray(trade_return) < 0]
    return float(losses.mean()) if len(losses) else 0.0


def turnover(
    traded_notional: np.ndarray,
    equity: np.ndarray,
    periods_per_year: float = 252.0,
    min_periods: int = MIN_PERIODS,
) -> float:
    """Traded notional per year as a multiple of mean equity."""
    n = len(equity) - 1
    if not _enough(n, min_periods):
        return 0.0
    return float(np.sum(traded_notional) / np.mean(equity) * periods_per_year / n)


def exposure(units: np.ndarray) -> float:
    """Fraction of bars (after the first) that end with a position; units is ``[T]`` or ``[T, N]``."""
    held = np.abs(np.asarray(units, dtype=np.float64)[1:]) > 0
    held = held.any(axis=1) if held.ndim == 2 else held
    return float(held.mean()) if len(held) else 0.0


class Activity(NamedTuple):
    """What a run did besides its equity: trades and positions."""

    trade_pnl: np.ndarray  # [K] PnL of each round trip, currency
    trade_return: np.ndarray  # [K] PnL / equity before entry
    traded_notional: np.ndarray  # [T] |units traded| * fill price at each bar
    units: np.ndarray  # [T] (or [T, N]) units held after each bar's fill
    costs: np.ndarray  # [T] costs paid at each bar


def summary(
    equity: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
    activity: Activity | None = None,
) -> dict[str, float]:
    """Every figure of one equity curve (and of its trades, when ``activity`` is given)."""
    equity = np.asarray(equity, dtype=np.float64)
    returns = bar_returns(equity)
    periods, rf = periods_per_year, risk_free_rate
    out = {
        "total_return": total_return(equity),
        "cagr": cagr(equity, periods, min_periods),
        "annual_volatility": annual_volatility(equity, periods, min_periods),
        "sharpe": sharpe(equity, periods, rf, min_periods),
        "sortino": sortino(equity, periods, rf, min_periods),
        "calmar": calmar(equity, periods, min_periods),
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_duration": float(max_drawdown_duration(equity)),
        "skew": skew(returns),
        "kurtosis": kurtosis(returns),
        "var_95": value_at_risk(returns),
        "cvar_95": conditional_value_at_risk(returns),
        "bars": float(len(returns)),
    }
    if activity is not None:
        out.update(
            {
                "trades": float(len(activity.trade_pnl)),
                "win_rate": win_rate(activity.trade_pnl),
                "profit_factor": profit_factor(activity.trade_pnl),
                "average_win": average_win(activity.trade_return),
                "average_loss": average_loss(activity.trade_return),
                "turnover": turnover(activity.traded_notional, equity, periods, min_periods),
                "exposure": exposure(activity.units),
                "costs": float(np.sum(activity.costs)),
            }
        )
    return out


def relative(
    equity: np.ndarray,
    benchmark_equity: np.ndarray,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    min_periods: int = MIN_PERIODS,
) -> dict[str, float]:
    """Alpha, beta and information ratio of one curve against a benchmark's curve on the same bars."""
    returns, market = bar_returns(equity), bar_returns(benchmark_equity)
    if len(returns) != len(market):
        raise ValueError(f"curves of different lengths: {len(returns) + 1} and {len(market) + 1} bars")
    return {
        "alpha": alpha(returns, market, periods_per_year, risk_free_rate, min_periods),
        "beta": beta(returns, market),
        "information_ratio": information_ratio(returns, market, periods_per_year, min_periods),
    }
