"""Causal technical indicators over one symbol's bars.

Every kernel uses trailing windows only, so the value at bar ``t`` depends on bars ``<= t``; the
first values (the warm-up) are NaN. Inputs are ``[T]`` float arrays, one symbol (what serving passes),
or ``[N, T]``, N symbols of equal length at once (what the features stage passes, so that each numpy
call covers many symbols). Time is the last axis here, not axis 0: each symbol's row is then
contiguous, and every sum over a window adds in the same order as for ``[T]``, so a symbol's values
are identical either way. Price-level indicators (MACD, ATR) are divided by the close so that one
scaler fits symbols of any price. Within one :func:`compute_features` call, indicators that share an
intermediate (the MACD lines, Wilder's DMI, the Bollinger bands) compute it once.

References: Wilder, *New Concepts in Technical Trading Systems* (1978) for RSI, ATR, DMI/ADX;
Appel (MACD), Bollinger (bands, %b), Chande (Aroon, 1995).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar

import numpy as np
from scipy.signal import lfilter

from rsc.core.schema import CLOSE, HIGH, LOW, OPEN, VOLUME


class Bars(NamedTuple):
    """OHLCV arrays, each ``[T]`` (one symbol) or ``[N, T]`` (N symbols of equal length)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray]) -> Bars:
        return cls(
            *(np.asarray(columns[name], dtype=np.float64) for name in (OPEN, HIGH, LOW, CLOSE, VOLUME))
        )


# -- intermediates shared within one compute_features call -----------------------------------------

_Result = TypeVar("_Result")
# The bars of the compute_features call under way in this thread, and the intermediates it computed.
_CALL: ContextVar[tuple[Bars, dict[tuple[Any, ...], Any]] | None] = ContextVar(
    "compute_features_call", default=None
)


def _shared(helper: Callable[..., _Result]) -> Callable[..., _Result]:
    """``helper(bars, *args)`` computed once per :func:`compute_features` call and handed to every
    kernel that asks for it (callers must not write into the result); kernels called on their own,
    as serving does, just compute it."""

    @functools.wraps(helper)
    def shared(bars: Bars, *args: Any) -> _Result:
        call = _CALL.get()
        if call is None or call[0] is not bars:
            return helper(bars, *args)
        memo = call[1]
        key = (helper, *args)
        if key not in memo:
            memo[key] = helper(bars, *args)
        return memo[key]

    return shared


# -- trailing-window building blocks ---------------------------------------------------------------


def _first_finite(x: np.ndarray) -> int | None:
    """Index of the first finite value (``T`` if none), shared by every row; None if rows differ."""
    finite = np.isfinite(x)
    starts = np.where(finite.any(axis=-1), finite.argmax(axis=-1), x.shape[-1])
    first = int(starts.flat[0])
    return first if (starts == first).all() else None


def _by_row(kernel: Callable[..., np.ndarray], x: np.ndarray, *args: float) -> np.ndarray:
    """``kernel`` applied to each symbol's row alone (rows whose warm-ups differ)."""
    return np.stack([kernel(row, *args) for row in x])


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over ``window`` bars; NaN until the window is full (leading NaNs are skipped).

    Prefix sums keep it causal: the value at ``t`` only ever reads ``x[:t + 1]``.
    """
    start = _first_finite(x)
    if start is None:
        return _by_row(_rolling_sum, x, window)
    out = np.full(x.shape, np.nan)
    tail = x[..., start:]
    if tail.shape[-1] >= window:
        csum = np.cumsum(np.concatenate([np.zeros((*x.shape[:-1], 1)), tail], axis=-1), axis=-1)
        out[..., start + window - 1 :] = csum[..., window:] - csum[..., :-window]
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return _rolling_sum(x, window) / window


def rolling_moments(x: np.ndarray, window: int, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over a trailing window; NaN until the window is full.

    Each window is summed on its own (no running sums, so no drift on long series): its values, then
    their squared deviations from its mean, as ``window`` passes over whole arrays, which add every
    window in the same order whatever the number of symbols.
    """
    start = _first_finite(x)
    if start is None:
        means, stds = zip(*(rolling_moments(row, window, ddof) for row in x), strict=True)
        return np.stack(means), np.stack(stds)
    mean, std = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    count = x.shape[-1] - start - window + 1  # full windows
    if count <= 0:
        return mean, std
    lags = [x[..., start + k : start + k + count] for k in range(window)]  # k-th value of each window
    total = lags[0].copy()
    for lag in lags[1:]:
        total += lag
    total /= window
    mean[..., -count:] = total
    if window > ddof:
        squares = np.zeros(total.shape)
        deviation = np.empty(total.shape)
        for lag in lags:
            np.subtract(lag, total, out=deviation)
            np.square(deviation, out=deviation)
            squares += deviation
        squares /= window - ddof
        np.sqrt(squares, out=std[..., -count:])
    return mean, std


def rolling_std(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Standard deviation over a trailing window (see :func:`rolling_moments`)."""
    return rolling_moments(x, window, ddof)[1]


def recursive_mean(x: np.ndarray, window: int, alpha: float) -> np.ndarray:
    """Exponential smoothing seeded with the simple mean of the first ``window`` finite values.

    ``y[s] = mean(x[s-window+1 .. s])``, then ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])``. With
    ``alpha = 1/window`` this is Wilder's smoothing; with ``2/(window+1)`` the usual EMA.
    """
    start = _first_finite(x)
    if start is None:
        return _by_row(recursive_mean, x, window, alpha)
    out = np.full(x.shape, np.nan)
    seed_at = start + window - 1
    if seed_at >= x.shape[-1]:
        return out
    seed = x[..., start : seed_at + 1].mean(axis=-1)
    out[..., seed_at] = seed
    rest = x[..., seed_at + 1 :]
    if rest.shape[-1]:
        zi = ((1.0 - alpha) * seed)[..., None]
        out[..., seed_at + 1 :] = lfilter([alpha], [1.0, -(1.0 - alpha)], rest, axis=-1, zi=zi)[0]
    return out


def ema(x: np.ndarray, window: int) -> np.ndarray:
    return recursive_mean(x, window, 2.0 / (window + 1))


def _ratio(numerator: np.ndarray, denominator: np.ndarray, when_zero: float) -> np.ndarray:
    """``numerator / denominator`` with ``when_zero`` where the denominator is 0 (NaN stays NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator == 0, when_zero, numerator / denominator)


def _lagged(x: np.ndarray) -> np.ndarray:
    """``x[t-1]`` at ``t``; NaN at 0."""
    return np.concatenate([np.full((*x.shape[:-1], 1), np.nan), x[..., :-1]], axis=-1)


def true_range(bars: Bars) -> np.ndarray:
    """max(high, prev close) - min(low, prev close); NaN at bar 0 (no previous close)."""
    prev = _lagged(bars.close)
    return np.maximum(bars.high, prev) - np.minimum(bars.low, prev)


# -- indicators: (bars, window, **params) -> [T] ---------------------------------------------------


def log_return(bars: Bars, window: int) -> np.ndarray:
    """log(close_t / close_{t-window})."""
    out = np.full(bars.close.shape, np.nan)
    out[..., window:] = np.log(bars.close[..., window:] / bars.close[..., :-window])
    return out


def sma_ratio(bars: Bars, window: int) -> np.ndarray:
    """close_t / SMA_window(close)_t - 1."""
    return bars.close / rolling_mean(bars.close, window) - 1.0


def ema_ratio(bars: Bars, window: int) -> np.ndarray:
    """close_t / EMA_window(close)_t - 1 (EMA seeded with the first window's SMA)."""
    return bars.close / ema(bars.close, window) - 1.0


def rsi(bars: Bars, window: int) -> np.ndarray:
    """Wilder's RSI scaled to [0, 1]; 0.5 when nothing moved.

    Average gain and loss use Wilder smoothing (alpha = 1/window) seeded with the simple mean of the
    first ``window`` changes (Wilder, 1978).
    """
    change = np.diff(bars.close, prepend=np.nan)
    avg_gain = recursive_mean(np.maximum(change, 0.0), window, 1.0 / window)
    avg_loss = recursive_mean(np.maximum(-change, 0.0), window, 1.0 / window)
    return _ratio(avg_gain, avg_gain + avg_loss, 0.5)


@_shared
def _macd_lines(bars: Bars, window: int, fast: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    if fast >= window:
        raise ValueError(f"macd: fast ({fast}) must be shorter than the slow window ({window})")
    line = ema(bars.close, fast) - ema(bars.close, window)
    return line, ema(line, signal)


def macd(bars: Bars, window: int, fast: int, signal: int) -> np.ndarray:
    """MACD line EMA_fast - EMA_slow (``window`` is the slow span), divided by the close."""
    line, _ = _macd_lines(bars, window, fast, signal)
    return line / bars.close


def macd_signal(bars: Bars, window: int, fast: int, signal: int) -> np.ndarray:
    """Signal line (EMA_signal of the MACD line), divided by the close."""
    _, sig = _macd_lines(bars, window, fast, signal)
    return sig / bars.close


def macd_hist(bars: Bars, window: int, fast: int, signal: int) -> np.ndarray:
    """MACD histogram (line - signal), divided by the close."""
    line, sig = _macd_lines(bars, window, fast, signal)
    return (line - sig) / bars.close


@_shared
def _bollinger_moments(bars: Bars, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The middle band (SMA of the close) and the close's population std."""
    return rolling_moments(bars.close, window, ddof=0)


def bollinger_b(bars: Bars, window: int, k: float) -> np.ndarray:
    """Bollinger %b: (close - lower) / (upper - lower), bands SMA +- k population std; 0.5 if flat."""
    middle, std = _bollinger_moments(bars, window)
    width = 2.0 * k * std
    return _ratio(bars.close - (middle - width / 2.0), width, 0.5)


def bollinger_width(bars: Bars, window: int, k: float) -> np.ndarray:
    """Bollinger bandwidth: (upper - lower) / middle."""
    middle, std = _bollinger_moments(bars, window)
    return 2.0 * k * std / middle


@_shared
def _average_true_range(bars: Bars, window: int) -> np.ndarray:
    """Wilder smoothing of the true range (ATR and DMI both use it)."""
    return recursive_mean(true_range(bars), window, 1.0 / window)


def atr(bars: Bars, window: int) -> np.ndarray:
    """Wilder's average true range, divided by the close."""
    return _average_true_range(bars, window) / bars.close


@_shared
def _directional(bars: Bars, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's +DI and -DI as fractions in [0, 1]."""
    up = np.diff(bars.high, prepend=np.nan)
    down = -np.diff(bars.low, prepend=np.nan)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    plus_dm[..., 0] = minus_dm[..., 0] = np.nan  # no previous bar, like the true range
    alpha = 1.0 / window
    tr = _average_true_range(bars, window)
    plus = _ratio(recursive_mean(plus_dm, window, alpha), tr, 0.0)
    minus = _ratio(recursive_mean(minus_dm, window, alpha), tr, 0.0)
    return plus, minus


def plus_di(bars: Bars, window: int) -> np.ndarray:
    return _directional(bars, window)[0]


def minus_di(bars: Bars, window: int) -> np.ndarray:
    return _directional(bars, window)[1]


def adx(bars: Bars, window: int) -> np.ndarray:
    """Wilder's ADX in [0, 1]: Wilder smoothing of DX = |+DI - -DI| / (+DI + -DI)."""
    plus, minus = _directional(bars, window)
    dx = _ratio(np.abs(plus - minus), plus + minus, 0.0)
    return recursive_mean(dx, window, 1.0 / window)


def _bars_since_extreme(x: np.ndarray, window: int, highest: bool) -> np.ndarray:
    """Bars since the highest (or lowest) value of the last ``window + 1`` bars.

    Ties count the most recent extreme; a NaN counts as the extreme (as ``np.argmax`` has it). One
    pass per age over whole arrays, newest first, so no ``[T, window]`` view is materialised; each
    pass is plain arithmetic into buffers (masked writes cost ten times as much): as the age only
    grows, the age of the latest older value that beats the best so far is the running maximum of
    ``age * beats``.
    """
    out = np.full(x.shape, np.nan)
    size = x.shape[-1]
    if size <= window:
        return out
    beats_best = np.greater if highest else np.less
    keep_best = np.maximum if highest else np.minimum  # propagates NaN, like the rule above
    has_nan = bool(np.isnan(x).any())
    best = x[..., window:].copy()
    age_type = np.min_scalar_type(window)
    ages = np.zeros(best.shape, age_type)
    beats = np.empty(best.shape, bool)
    aged = np.empty(best.shape, age_type)
    for age in range(1, window + 1):
        older = x[..., window - age : size - age]
        beats_best(older, best, out=beats)
        if has_nan:
            beats |= np.isnan(older) & ~np.isnan(best)
        keep_best(best, older, out=best)
        np.multiply(beats, age_type.type(age), out=aged)
        np.maximum(ages, aged, out=ages)
    out[..., window:] = ages
    return out


def aroon_up(bars: Bars, window: int) -> np.ndarray:
    """Aroon up in [0, 1]: (window - bars since the window's highest high) / window."""
    return (window - _bars_since_extreme(bars.high, window, highest=True)) / window


def aroon_down(bars: Bars, window: int) -> np.ndarray:
    """Aroon down in [0, 1]: (window - bars since the window's lowest low) / window."""
    return (window - _bars_since_extreme(bars.low, window, highest=False)) / window


def aroon_osc(bars: Bars, window: int) -> np.ndarray:
    """Aroon oscillator in [-1, 1]: up - down."""
    return aroon_up(bars, window) - aroon_down(bars, window)


def volatility(bars: Bars, window: int) -> np.ndarray:
    """Realised volatility: sample std of 1-bar log returns over the window (not annualised)."""
    return rolling_std(log_return(bars, 1), window)


def volume_z(bars: Bars, window: int) -> np.ndarray:
    """Volume z-score against the trailing window (sample std); 0 when volume did not vary."""
    mean, std = rolling_moments(bars.volume, window)
    return _ratio(bars.volume - mean, std, 0.0)


# -- the registry ----------------------------------------------------------------------------------


class Indicator(NamedTuple):
    """A kernel, its extra parameters with defaults, and the index of its first defined value."""

    kernel: Callable[..., np.ndarray]
    first_valid: Callable[..., int]
    params: Mapping[str, int | float] = {}
    needs: frozenset[str] = frozenset({CLOSE})  # the bar columns it reads (close-only bars have no range)


def _macd_first(window: int, fast: int, signal: int) -> int:
    return window - 1


def _macd_signal_first(window: int, fast: int, signal: int) -> int:
    return window + signal - 2


_MACD = {"fast": 12, "signal": 9}
_BOLLINGER = {"k": 2.0}

INDICATORS: dict[str, Indicator] = {
    "log_return": Indicator(log_return, lambda w: w),
    "sma_ratio": Indicator(sma_ratio, lambda w: w - 1),
    "ema_ratio": Indicator(ema_ratio, lambda w: w - 1),
    "rsi": Indicator(rsi, lambda w: w),
    "macd": Indicator(macd, _macd_first, _MACD),
    "macd_signal": Indicator(macd_signal, _macd_signal_first, _MACD),
    "macd_hist": Indicator(macd_hist, _macd_signal_first, _MACD),
    "bollinger_b": Indicator(bollinger_b, lambda w, k: w - 1, _BOLLINGER),
    "bollinger_width": Indicator(bollinger_width, lambda w, k: w - 1, _BOLLINGER),
    "atr": Indicator(atr, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "plus_di": Indicator(plus_di, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "minus_di": Indicator(minus_di, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "adx": Indicator(adx, lambda w: 2 * w - 1, needs=frozenset({HIGH, LOW, CLOSE})),
    "aroon_up": Indicator(aroon_up, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "aroon_down": Indicator(aroon_down, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "aroon_osc": Indicator(aroon_osc, lambda w: w, needs=frozenset({HIGH, LOW, CLOSE})),
    "volatility": Indicator(volatility, lambda w: w),
    "volume_z": Indicator(volume_z, lambda w: w - 1, needs=frozenset({VOLUME})),
}


def _indicator(name: str) -> Indicator:
    if name not in INDICATORS:
        raise ValueError(f"unknown indicator(s) [{name!r}]; known: {sorted(INDICATORS)}")
    return INDICATORS[name]


def _format(value: float) -> str:
    return f"{value:g}"


class IndicatorRef(NamedTuple):
    """One configured indicator: name, trailing window and its extra parameters (sorted pairs).

    Parameters left out take the registry's defaults, so ``IndicatorRef("macd", 26)`` and
    ``IndicatorRef.of("macd", 26, {"fast": 12, "signal": 9})`` compute and name the same column.
    """

    name: str
    window: int
    params: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, name: str, window: int, params: Mapping[str, float] | None = None) -> IndicatorRef:
        """A checked ref: known name, known parameters, integer parameters given as integers."""
        ref = cls(name, int(window), tuple(sorted((params or {}).items())))
        ref.resolved_params()
        return ref

    def resolved_params(self) -> dict[str, Any]:
        """The kernel's keyword arguments: defaults overlaid with the given parameters, typed."""
        defaults = _indicator(self.name).params
        given = dict(self.params)
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(
                f"indicator {self.name!r}: unknown parameter(s) {unknown}; known: {sorted(defaults)}"
            )
        if self.window < 1:
            raise ValueError(f"indicator {self.name!r}: window must be >= 1, got {self.window}")
        out: dict[str, Any] = {}
        for key, default in defaults.items():
            value = given.get(key, default)
            if isinstance(default, int):
                if float(value) != int(value) or int(value) < 1:
                    raise ValueError(
                        f"indicator {self.name!r}: {key} must be a positive integer, got {value}"
                    )
                value = int(value)
            out[key] = value if isinstance(default, int) else float(value)
        return out

    @property
    def column(self) -> str:
        """Stable column name: ``name_window`` plus ``_keyvalue`` per parameter, sorted by key."""
        params = self.resolved_params() if self.name in INDICATORS else dict(self.params)
        return "_".join(
            [self.name, str(self.window), *(f"{k}{_format(v)}" for k, v in sorted(params.items()))]
        )

    @property
    def first_valid(self) -> int:
        """Index of the first defined value (given finite bars from index 0)."""
        return _indicator(self.name).first_valid(self.window, **self.resolved_params())

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with every parameter spelled out (what ``policy.json`` stores)."""
        return {"name": self.name, "window": self.window, "params": self.resolved_params()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndicatorRef:
        return cls.of(str(data["name"]), int(data["window"]), data.get("params") or {})


def feature_names(specs: Sequence[IndicatorRef]) -> list[str]:
    return [IndicatorRef(*s).column for s in specs]


def compute_features(bars: Bars, specs: Sequence[IndicatorRef]) -> np.ndarray:
    """All indicators of ``specs``: ``[T, F]`` for one symbol's ``[T]`` bars, ``[N, T, F]`` for
    ``[N, T]`` bars; NaN during warm-up."""
    columns = compute_feature_columns(bars, specs)
    return np.stack(columns, axis=-1) if columns else np.empty((*bars.close.shape, 0))


def compute_feature_columns(bars: Bars, specs: Sequence[IndicatorRef]) -> list[np.ndarray]:
    """The indicators of ``specs`` one array each, shaped like ``bars.close`` (for callers that lay
    them out feature by feature: stacking them along a last axis is a costly transpose)."""
    unknown = [s.name for s in specs if s.name not in INDICATORS]
    if unknown:
        raise ValueError(f"unknown indicator(s) {unknown}; known: {sorted(INDICATORS)}")
    refs = [IndicatorRef(*s) for s in specs]
    call = _CALL.set((bars, {}))
    try:
        return [INDICATORS[r.name].kernel(bars, r.window, **r.resolved_params()) for r in refs]
    finally:
        _CALL.reset(call)


def warmup_bars(specs: Sequence[IndicatorRef]) -> int:
    """Bars needed before every indicator is defined."""
    return max((IndicatorRef(*s).first_valid + 1 for s in specs), default=0)
