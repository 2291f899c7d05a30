"""Typed, frozen run settings: one model per concern, every field documented.

The YAML files under configs/ map one to one onto :class:`Settings`. Unknown keys and wrong types
are rejected by pydantic (``extra="forbid"``) and reported by :mod:`rsc.config.loader` with the key
and the file that set it.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from rsc.config.lineage import lineage_model_name, universe_label


class Section(BaseModel):
    """Base of every settings section: strict keys, immutable after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RunSettings(Section):
    name: str = Field(
        "demo",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Run name, chosen by the user; runs are addressed by it.",
    )
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Execution id: each execution (`rsc run`, a pipeline run) writes under "
        "<root>/<name>/<id>/, so two executions never share files; None: <root>/<name>/ (stage-by-stage "
        "commands, and runs made before ids existed).",
    )
    seed: int = Field(7, description="Seed for every random draw of the run.")

    @property
    def label(self) -> str:
        """``<name>-<id>`` (or the name): MLflow run names, RayJob and Ray job names."""
        return f"{self.name}-{self.id}" if self.id else self.name


class StorageSettings(Section):
    root: str = Field("file://./artifacts", description="Storage root URI: file:// or s3://.")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (MinIO, a loopback server); None = AWS_ENDPOINT_URL(_S3) or AWS."
    )
    s3_region: str | None = Field(None, description="S3 region; None = AWS_DEFAULT_REGION / AWS_REGION.")
    s3_access_key_id: str | None = Field(
        None, description="S3 key id; None = the usual AWS chain (AWS_ACCESS_KEY_ID, profile, IRSA)."
    )
    s3_secret_access_key: str | None = Field(
        None, description="S3 secret; None = the usual AWS chain. Prefer the AWS_* variables for real keys."
    )

    @field_validator("root")
    @classmethod
    def _absolute_file_root(cls, value: str) -> str:
        """Resolve a relative file:// root once, so every step and subprocess sees the same place."""
        if "://" not in value:
            value = f"file://{value}"
        if value.startswith("file://"):
            path = value.removeprefix("file://")
            return f"file://{os.path.abspath(path)}"
        if not value.startswith("s3://"):
            raise ValueError(f"storage root must be file:// or s3://, got {value!r}")
        return value.rstrip("/")


CheckPolicy = Literal["fail", "repair"]


class ValidationSettings(Section):
    """What each repairable bar check does: ``fail`` (stop, nothing written) or ``repair`` (logged),
    and how the data-quality checks (``rsc.data.quality``) report."""

    timestamps: CheckPolicy = Field(
        "fail", description="Unparseable or missing timestamp; repair: drop the row."
    )
    order: CheckPolicy = Field("fail", description="Timestamps not ascending; repair: sort.")
    duplicates: CheckPolicy = Field("fail", description="Repeated timestamp; repair: keep the first.")
    numeric: CheckPolicy = Field("fail", description="Non-numeric OHLCV value; repair: drop the row.")
    finite: CheckPolicy = Field(
        "fail",
        description="NaN, empty or inf OHLCV value; repair: forward-fill (a bar missing a price becomes "
        "a flat bar at the last close; leading rows are dropped).",
    )
    positive: CheckPolicy = Field("fail", description="Price <= 0; repair: drop the row.")
    high: CheckPolicy = Field("fail", description="high < max(open, close); repair: drop the row.")
    low: CheckPolicy = Field("fail", description="low > min(open, close); repair: drop the row.")
    volume: CheckPolicy = Field("fail", description="Negative volume; repair: drop the row.")
    quality: Literal["warn", "fail", "off"] = Field(
        "warn",
        description="Data-quality checks (stale opens, zero-volume runs, price jumps, missing sessions): "
        "warn (logged, listed by `rsc data validate`), fail (stop, nothing written) or off.",
    )
    stale_open_share: float = Field(
        0.5, gt=0, le=1, description="Share of a year's bars whose open equals the previous close, to warn."
    )
    zero_volume_run: int = Field(5, ge=1, description="Bars in a row with zero volume, to warn.")
    jump_sigma: float = Field(
        20.0, gt=0, description="Close-to-close move, in robust standard deviations, to warn."
    )
    max_missing_sessions: int = Field(
        4,
        ge=0,
        description="Consecutive sessions missing against the implied calendar, beyond which to warn.",
    )

    @classmethod
    def repairable(cls) -> list[str]:
        """The checks a policy of ``fail`` or ``repair`` applies to."""
        return sorted(n for n, f in cls.model_fields.items() if f.annotation == CheckPolicy)


class YahooSettings(Section):
    base_url: str = Field(
        "https://query2.finance.yahoo.com", description="Yahoo Finance host serving /v8/finance/chart."
    )
    interval: Literal["1d", "1wk", "1mo", "1h", "30m", "15m", "5m", "1m"] = Field(
        "1d", description="Bar interval."
    )
    adjusted: bool = Field(
        True,
        description="Scale OHLC by adjclose/close (splits and dividends); data.price, when set, decides "
        "instead (one setting for every source; this one is kept for existing configs).",
    )
    retries: int = Field(4, ge=0, description="Retries after a 429, a 5xx or a connection error.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry.")
    requests_per_second: float = Field(2.0, gt=0, description="Rate limit on requests to the host.")
    timeout_s: float = Field(20.0, gt=0, description="Timeout of one HTTP request.")
    cache_dir: str = Field("~/.cache/rsc/yahoo", description="On-disk cache of responses (local path).")
    cache_ttl_s: float = Field(
        86_400.0, ge=0, description="Age after which a cached response is fetched again; 0 = never reuse."
    )


class DataSettings(Section):
    source: Literal["bundled", "csv", "parquet", "yfinance"] = Field(
        "bundled", description="Where bars come from."
    )
    symbols: tuple[str, ...] = Field(
        ("SPX",), description="Symbols to load (bundled: SPX, GOOG); ['*'] = every symbol the files hold."
    )
    path: str | None = Field(
        None,
        description="csv/parquet: a file (one symbol, or a 'symbol' column), a folder (one file per "
        "symbol, named after it) or a template with {symbol}; file:// or s3://.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Bar column -> the file's column (timestamp, open, high, low, close, adj_close, "
        "volume, symbol); wins over the names the loader recognises.",
    )
    price: Literal["close", "adj_close"] | None = Field(
        None,
        description="Every source: adj_close scales open, high, low and close by adj_close / close "
        "(splits and dividends), close keeps the traded prices; None: the source's default (files "
        "close, Yahoo data.yfinance.adjusted).",
    )
    align: Literal["intersection", "union"] = Field(
        "intersection",
        description="Several symbols on different calendars: intersection keeps the bars every symbol has; "
        "union keeps every bar once all symbols have started, a symbol's missing bars forward-filled "
        "and untradeable (its position held).",
    )
    layout: Literal["long", "wide"] = Field(
        "long", description="long: OHLCV columns; wide: a timestamp and one close column per symbol."
    )
    date_format: str | None = Field(
        None, description="strftime format of the timestamps; None: ISO, or slashed dates detected."
    )
    timezone: str | None = Field(
        None, description="Zone of naive intraday timestamps (e.g. America/New_York); UTC once loaded."
    )
    validation: ValidationSettings = ValidationSettings()
    yfinance: YahooSettings = YahooSettings()
    frequency: str | None = Field(
        None,
        pattern=r"^[0-9]+(m|h|d|wk|mo)$",
        description="Bar size (1m, 5m, 1h, 1d, 1wk, 1mo, ...); None: Yahoo's interval, else 1d. Ingest "
        "checks it against the bars; it names the model lineage.",
    )
    dataset: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name of the stored dataset the bars are versions of (<storage.root>/datasets/<name>/); "
        "None: <source>-<symbols>-<bar size> (a file source adds a hash of data.path).",
    )
    version: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{8,64}$",
        description="Pin a stored version of the dataset (its hash, or a unique prefix of 8+ characters): "
        "the run uses exactly those bars and reads no source.",
    )
    restate: bool = Field(
        False,
        description="Let new bars replace stored bars of the same time with different values (a provider "
        "that restated its history); off: such bars stop the ingest.",
    )
    start: date = Field(date(2010, 1, 1), description="First bar date (inclusive).")
    end: date = Field(date(2018, 12, 31), description="Last bar date (inclusive).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(
                    f"unknown time zone {value!r} (an IANA name such as Europe/London)"
                ) from error
        return value

    @field_validator("symbols")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is required")
        return value


class IndicatorSpec(Section):
    name: str = Field(description="Indicator name from rsc.core.features.INDICATORS.")
    window: int = Field(14, ge=1, description="Trailing window (bars); MACD: the slow span.")
    params: dict[str, float] = Field(
        default_factory=dict,
        description="Extra parameters (MACD fast/signal, Bollinger k); missing ones take the defaults.",
    )


class FeatureSettings(Section):
    indicators: tuple[IndicatorSpec, ...] = Field(
        (
            IndicatorSpec(name="log_return", window=1),
            IndicatorSpec(name="log_return", window=5),
            IndicatorSpec(name="sma_ratio", window=20),
            IndicatorSpec(name="rsi", window=14),
            IndicatorSpec(name="volatility", window=20),
        ),
        description="Indicators computed per symbol, in this order.",
    )


class WalkForwardSettings(Section):
    """Walk-forward folds across the history before the test part, laid from its start.

    A first training window, then ``folds`` validation windows that tile the rest of the history up to
    ``split.validation_end``; unset sizes follow the data's length (``history / (folds + 1)`` bars each).
    """

    folds: int = Field(
        4, ge=0, description="Validation windows (0 = none); the last one ends at split.validation_end."
    )
    mode: Literal["expanding", "rolling"] = Field(
        "expanding",
        description="expanding (anchored): train from the first bar; rolling: the train_bars before each "
        "validation window only.",
    )
    train_bars: int | None = Field(
        None,
        ge=2,
        description="Bars of the first training window (expanding) or of every one (rolling); "
        "default: history / (folds + 1).",
    )
    validation_bars: int | None = Field(
        None,
        ge=1,
        description="Bars of each validation window; default: the history after the first training "
        "window, split evenly.",
    )
    label_horizon: int = Field(
        1,
        ge=0,
        description="Bars a row's label looks ahead; rows whose label reaches a later window are purged.",
    )
    embargo_bars: int = Field(
        5, ge=0, description="Bars after an evaluation window in which no training row may sit."
    )


class SplitSettings(Section):
    train_end: date = Field(date(2016, 12, 31), description="Last date of the training part.")
    validation_end: date = Field(
        date(2017, 12, 31), description="Last date of the validation part; the rest is test."
    )
    holdout_bars: int | None = Field(
        None,
        ge=2,
        description="The last N bars become a final holdout after the test part: no selection reads "
        "them, the evaluation reports them once and counts every model evaluated there (None = off).",
    )
    walk_forward: WalkForwardSettings = WalkForwardSettings()


class EnvSettings(Section):
    kind: Literal["single", "portfolio"] = Field(
        "single",
        description="single: rsc/Trading-v0, one asset at a time (with several symbols, one policy trained "
        "across them, an episode per symbol); portfolio: rsc/Portfolio-v0, weights over every symbol and "
        "cash (needs two or more symbols).",
    )
    symbol_embedding: bool = Field(
        False,
        description="single with several symbols (one policy across the universe): append a one-hot of the "
        "symbol to the observation, so the policy may act differently per symbol; off: it cannot tell them.",
    )
    window: int = Field(30, ge=1, description="Bars of features in one observation.")
    action: Literal["discrete", "continuous"] = Field(
        "discrete", description="discrete: index into `positions`; continuous: target weight in [-1, 1]."
    )
    positions: tuple[float, ...] = Field(
        (0.0, 1.0), description="Discrete target positions (fraction of equity; negative = short)."
    )
    initial_cash: float = Field(100_000.0, gt=0, description="Starting capital.")
    fill: Literal["next_open", "next_close"] = Field(
        "next_open", description="A decision on bar t fills at bar t+1's open or close."
    )
    commission_bps: float = Field(5.0, ge=0, description="Commission on traded notional, basis points.")
    slippage_bps: float = Field(2.0, ge=0, description="Slippage on traded notional, basis points.")
    spread_factor: float = Field(
        0.0, ge=0, description="Spread estimate as a fraction of the last bar's range (0 = off)."
    )
    borrow_bps_per_year: float = Field(0.0, ge=0, description="Borrow fee on short notional, bps per year.")
    periods_per_year: float | None = Field(
        None, gt=0, description="Bars per year for the borrow fee's accrual; None = from the bars' spacing."
    )
    max_position: float = Field(1.0, gt=0, le=10, description="Limit on |weight| of any one asset.")
    max_leverage: float = Field(1.0, gt=0, le=10, description="Limit on gross exposure (sum of |weights|).")
    stop_loss: float | None = Field(
        None, gt=0, lt=1, description="Exit when price moves this fraction against."
    )
    take_profit: float | None = Field(
        None, gt=0, description="Exit when price moves this fraction in favour."
    )
    max_drawdown: float | None = Field(
        None, gt=0, lt=1, description="Flatten and end the episode beyond this drawdown from the peak."
    )
    episode_length: int = Field(252, ge=2, description="Bars per training episode (random start).")
    reward: str = Field("log_return", description="Reward name from rsc.core.rewards.REWARDS.")
    drawdown_penalty: float = Field(
        1.0, ge=0, description="Weight of new drawdown (drawdown_penalty reward)."
    )
    sharpe_eta: float = Field(0.01, gt=0, lt=1, description="Moment adaptation rate (diff_sharpe reward).")
    ruin_fraction: float = Field(
        0.5, gt=0, lt=1, description="Episode terminates below this equity fraction."
    )

    @model_validator(mode="after")
    def _positions_within_limits(self) -> EnvSettings:
        if not self.positions:
            raise ValueError("positions must not be empty")
        if self.kind == "portfolio":  # weights come from the scores, not from positions
            return self
        worst = max(abs(p) for p in self.positions)
        if worst > min(self.max_position, self.max_leverage):
            raise ValueError(f"position {worst} exceeds max_position/max_leverage")
        return self


class TrainSettings(Section):
    algorithm_config: str = Field("rllib_configs/ppo.yaml", description="RLlib algorithm YAML.")
    iterations: int | None = Field(None, ge=1, description="Overrides the YAML's stop.training_iteration.")
    eval_every: int = Field(2, ge=1, description="Validate with the backtest metric every N iterations.")
    metric: str = Field("eval/sharpe", description="Validation metric that picks the best checkpoint (max).")
    checkpoint_every: int = Field(1, ge=1, description="Commit a resumable checkpoint every N iterations.")


class SelectionSettings(Section):
    """Walk-forward model selection after the sweep: the best sweep trials re-trained on every fold."""

    walk_forward: bool = Field(True, description="Pick among the top sweep trials by walk-forward folds.")
    candidates: int = Field(2, ge=1, description="Top sweep trials re-validated on every fold.")
    iterations: int | None = Field(None, ge=1, description="Training iterations per fold (default: tune's).")
    metric: str = Field("eval/sharpe", description="Validation metric compared across folds (max).")
    aggregate: Literal["mean", "worst", "mean_minus_std"] = Field(
        "mean", description="How one candidate's per-fold values combine into its score."
    )


class TuneSettings(Section):
    enabled: bool = Field(True, description="Run the hyperparameter search before training.")
    num_samples: int | None = Field(None, ge=1, description="Overrides the YAML's tune.num_samples.")
    iterations: int | None = Field(None, ge=1, description="Overrides the YAML's iterations per trial.")
    selection: SelectionSettings = SelectionSettings()


class EvaluateSettings(Section):
    periods_per_year: float | None = Field(
        None, gt=0, description="Bars per year for annualised figures; None = from the bars' spacing."
    )
    risk_free_rate: float = Field(0.0, description="Annual risk-free rate for Sharpe, Sortino and alpha.")
    min_periods: int = Field(20, ge=2, description="Fewest returns for an annualised figure (else 0.0).")
    random_seeds: int = Field(200, ge=1, description="Seeds of the random-positions benchmark.")
    sma_fast: int = Field(50, ge=1, description="Fast moving average of the SMA-crossover benchmark (bars).")
    sma_slow: int = Field(200, ge=2, description="Slow moving average of the SMA-crossover benchmark (bars).")
    momentum_lookback: int = Field(252, ge=1, description="Lookback of the time-series momentum benchmark.")
    rebalance_every: int = Field(21, ge=1, description="Bars between rebalances of multi-asset benchmarks.")
    covariance_window: int = Field(126, ge=2, description="Trailing returns for minimum-variance weights.")
    pbo_splits: int = Field(16, ge=2, description="Even number of blocks for PBO's CSCV.")
    trial_correlation: float = Field(
        0.5,
        gt=-1,
        lt=1,
        description="Validation series correlated at least this much count as one trial in the DSR's N.",
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="PSR/DSR needed to call a result skill.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EvaluateSettings:
        if self.sma_fast >= self.sma_slow:
            raise ValueError(f"evaluate.sma_fast ({self.sma_fast}) must be below sma_slow ({self.sma_slow})")
        if self.pbo_splits % 2:
            raise ValueError(f"evaluate.pbo_splits must be even, got {self.pbo_splits}")
        return self


class RegistrySettings(Section):
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; None = sqlite in the storage root."
    )
    experiment: str = Field("rsc", description="MLflow experiment name.")
    model_name: str | None = Field(
        None,
        description="Registered model name; None: the lineage's own, rsc-<strategy>-<universe>-<frequency> "
        "(e.g. rsc-demo-spx-1d), so that models of other instruments or bar sizes never share a champion.",
    )
    strategy: str | None = Field(
        None, description="The strategy part of the derived model name; None: run.name."
    )
    promotion_metric: str = Field("sharpe", description="Test-period metric the promotion gate compares.")
    min_improvement: float = Field(
        0.0, description="Margin the challenger must beat the champion (and buy-and-hold) by."
    )
    require_beat_benchmark: bool = Field(True, description="Also require beating buy-and-hold.")
    min_deflated_sharpe: float | None = Field(
        0.95,
        ge=0,
        le=1,
        description="The challenger's deflated Sharpe ratio must exceed this; None = no DSR check.",
    )
    missing_deflated_sharpe: Literal["reject", "skip"] = Field(
        "reject",
        description="A run without a DSR (no sweep): reject, or skip the check (the decision says so).",
    )
    shadow_bars: int = Field(
        0,
        ge=0,
        description="0: the register stage promotes on the test window alone. N: a version that passes it "
        "stays @challenger and trades N bars in shadow beside the champion (paper.shadow), then the gate "
        "decides on the test window and the shadow record together.",
    )
    shadow_margin: float = Field(
        0.0,
        description="The challenger's return over its shadow bars must reach the champion's on the same bars "
        "plus this (negative: a shortfall it may have).",
    )


class ServeAutoscalingSettings(Section):
    """Ray Serve autoscaling of the policy deployment (replaces ``num_replicas`` when enabled)."""

    enabled: bool = Field(False, description="Scale replicas on ongoing requests.")
    min_replicas: int = Field(1, ge=0, description="Fewest replicas.")
    max_replicas: int = Field(4, ge=1, description="Most replicas.")
    target_ongoing_requests: float = Field(
        8.0, gt=0, description="Ongoing requests per replica the autoscaler aims at."
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> ServeAutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})"
            )
        return self


class ServeSettings(Section):
    managed_by: Literal["run", "rayservice"] = Field(
        "run",
        description="run: the deploy step starts the Serve app on the run's Ray cluster; rayservice: the "
        "chart's RayService owns Serve, and the deploy step waits for it to serve the champion.",
    )
    host: str = Field("127.0.0.1", description="HTTP host of Ray Serve.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of Ray Serve.")
    app_name: str = Field("rsc", description="Ray Serve application name.")
    route_prefix: str = Field("/", description="Route prefix of the application.")
    num_replicas: int = Field(1, ge=1, description="Replicas of the policy deployment (no autoscaling).")
    alias: str = Field("champion", description="Registered model alias the application serves and follows.")
    alias_poll_s: float = Field(
        5.0,
        gt=0,
        description="How often the app's alias controller resolves the alias; its replicas then load the "
        "version it names and the switch is announced once all of them serve it.",
    )
    max_batch_size: int = Field(
        16, ge=1, description="Observations per network call (@serve.batch); 1 = no batching."
    )
    batch_wait_timeout_s: float = Field(
        0.0,
        ge=0,
        description="Longest wait for a batch to fill after its first request; 0 = batch what is queued.",
    )
    max_ongoing_requests: int = Field(
        64, ge=1, description="Concurrent requests per replica (must allow batches to fill)."
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413.")
    max_batch_requests: int = Field(256, ge=1, description="Items of one /v1/act/batch request, else 413.")
    replica_cpus: float = Field(1.0, ge=0, description="CPUs reserved by each replica.")
    drift_every_s: float = Field(
        60.0,
        ge=0,
        description="Seconds between drift measurements of the requests' features against the training "
        "rows (PSI and KS gauges; bins and alert level from monitor.drift_*); 0 = off.",
    )
    drift_window: int = Field(
        500, ge=30, description="Latest requests per replica in each drift measurement."
    )
    autoscaling: ServeAutoscalingSettings = ServeAutoscalingSettings()


class RiskSettings(Section):
    """Limits the paper trader enforces on every bar (``None`` switches a kill switch off)."""

    max_position: float = Field(
        1.0, gt=0, le=10, description="|weight| of one symbol; larger targets are clipped."
    )
    max_leverage: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Gross exposure; targets are scaled down to it, orders beyond it rejected.",
    )
    max_daily_loss: float | None = Field(
        0.05,
        gt=0,
        lt=1,
        description="Kill switch: flatten and stop this fraction below the previous day's last equity.",
    )
    max_drawdown: float | None = Field(
        0.25, gt=0, lt=1, description="Kill switch: flatten and stop this fraction below the equity peak."
    )
    stale_after_s: float | None = Field(
        None,
        gt=0,
        description="Stale-data guard: a bar this old, or no bar for this long, holds and alerts; "
        "None = 5 bar intervals (live feed only; a replay is never stale).",
    )
    model_retries: int = Field(3, ge=0, description="Retries of a failed decision request within one bar.")
    model_backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles per retry.")
    model_backoff_max_s: float = Field(60.0, ge=0, description="Ceiling of one retry delay.")


class PaperSettings(Section):
    bars: int = Field(20, ge=1, description="Replay: the last `bars` bars of the run's data are traded.")
    strategy: str = Field("rsc-demo", description="Strategy tag on paper-trading metrics.")
    session: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Ledger name: <run root>/paper/<session>/; a restart with the same name resumes it.",
    )
    feed: Literal["replay", "live"] = Field(
        "replay", description="replay: the run's stored bars; live: Yahoo's chart endpoint polled each bar."
    )
    speed: float = Field(0.0, ge=0, description="Replay: bars per second; 0 = as fast as possible.")
    symbols: tuple[str, ...] = Field((), description="Symbols traded; empty = data.symbols.")
    poll_s: float | None = Field(
        None,
        gt=0,
        description="Live: seconds between polls; None = the bar interval (data.yfinance.interval).",
    )
    lookback_days: int = Field(500, ge=1, description="Live: calendar days of history fetched for decisions.")
    decisions: Literal["http", "registry"] = Field(
        "http", description="http: the Serve endpoint's /v1/act; registry: the @champion model in process."
    )
    endpoint: str | None = Field(None, description="Policy endpoint URL; None = serve.host:serve.port.")
    shadow: bool = Field(
        False,
        description="Also run the registry's @challenger on the same bars without trading; P&L side by side.",
    )
    challenger_runs: Literal["off", "local", "kfp"] = Field(
        "off",
        description="A decay or drift alert starts a challenger run: off; local (`rsc run` in the "
        "background, same settings); kfp (a run on Kubeflow Pipelines at paper.kfp_host).",
    )
    kfp_host: str | None = Field(None, description="Kubeflow Pipelines API URL for challenger_runs: kfp.")
    challenger_cooldown_s: float = Field(
        86_400.0, ge=0, description="At most one challenger run per this many seconds of the trader's life."
    )
    order_type: Literal["market", "limit", "stop", "stop_limit"] = Field(
        "market", description="Order kind placed for each decision (market = the env's own fills)."
    )
    limit_offset_bps: float = Field(
        10.0,
        ge=0,
        description="limit: buy this far below (sell above) the decision close; stop_limit: "
        "the limit this far beyond the stop (bps).",
    )
    stop_offset_bps: float = Field(
        10.0, ge=0, description="stop / stop_limit: buy this far above (sell below) the decision close (bps)."
    )
    sizing: Literal["weight", "units"] = Field(
        "weight",
        description="weight: a target weight sized at the fill price (the env's fills); units: whole units "
        "sized at the decision close, as a broker takes orders (a gap up can then reject a buy).",
    )
    rebalance_band: float = Field(
        0.0, ge=0, description="No order when the target weight is within this of the current weight."
    )
    snapshot_every: int = Field(100, ge=1, description="Write a state snapshot every N ledger segments.")
    risk: RiskSettings = RiskSettings()

    @model_validator(mode="after")
    def _kfp_host_for_kfp_runs(self) -> PaperSettings:
        if self.challenger_runs == "kfp" and not self.kfp_host:
            raise ValueError("challenger_runs: kfp needs kfp_host, the Kubeflow Pipelines API URL")
        return self


class MonitorSettings(Section):
    enabled: bool = Field(True, description="Send DogStatsD metrics.")
    statsd_host: str = Field("127.0.0.1", description="DogStatsD host (the Datadog agent).")
    statsd_port: int = Field(8125, ge=1, le=65535, description="DogStatsD UDP port.")
    environment: str = Field("local", description="`env` tag on every metric.")
    drift: bool = Field(True, description="Paper trading: compare live features with the training window.")
    drift_reference: Literal["train", "validation"] = Field(
        "train", description="Part of the run's split the live features are compared with."
    )
    drift_window: int = Field(60, ge=10, description="Latest live bars of features in each comparison.")
    drift_every: int = Field(20, ge=1, description="Bars between drift measurements.")
    drift_bins: int = Field(10, ge=2, description="Quantile bins of the reference for the PSI.")
    drift_psi_alert: float = Field(0.25, gt=0, description="PSI above which the drift check warns.")
    decay: bool = Field(
        True, description="Paper trading: compare the champion's live returns with its backtest's."
    )
    decay_window: int = Field(60, ge=10, description="Latest live bars of returns in each comparison.")
    decay_min_bars: int = Field(20, ge=5, description="Live bars of a version before it is judged at all.")
    decay_every: int = Field(5, ge=1, description="Bars between decay measurements.")
    decay_psr_alert: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Alert when the probability that the live Sharpe reaches the backtest's (PSR) "
        "is below this.",
    )
    decay_drawdown_factor: float = Field(
        1.5, gt=0, description="Alert when the live drawdown exceeds the backtest's maximum times this."
    )


class RaySettings(Section):
    address: str | None = Field(
        None, description="Ray cluster address; None starts a local head for the run (127.0.0.1)."
    )
    dashboard_port: int = Field(
        8265, ge=1, le=65535, description="Dashboard (and Jobs API) port of the local head a run starts."
    )


# A Kubernetes resource quantity ("4", "500m", "8Gi"); a bare number in YAML is read as one too.
Quantity = Annotated[
    str,
    BeforeValidator(lambda value: str(value) if isinstance(value, int | float) else value),
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"),
]


class Toleration(Section):
    """One Kubernetes toleration (the fields of core/v1 Toleration that node taints need)."""

    key: str | None = Field(None, description="Taint key; None with operator Exists tolerates every taint.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Exists, or Equal to `value`.")
    value: str | None = Field(None, description="Taint value (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect; None matches every effect."
    )


class ClusterSettings(Section):
    """Where the train and tune steps run: in process (``local``) or as a KubeRay ``RayJob``."""

    launcher: Literal["local", "ray-jobs", "kuberay"] = Field(
        "local",
        description="local: run the stage in the step's process; ray-jobs: submit it to an existing Ray "
        "cluster's Jobs API; kuberay: one RayJob per step.",
    )
    jobs_address: str = Field(
        "http://127.0.0.1:8265", description="ray-jobs: the cluster's dashboard (Jobs API) address."
    )
    jobs_python: str = Field("python", description="ray-jobs: the Python that runs `-m rsc` on the cluster.")
    image: str = Field(
        "ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0",
        description="Project image of the Ray head and CPU workers.",
    )
    gpu_image: str = Field(
        "ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0-gpu", description="Project image (CUDA) of GPU workers."
    )
    namespace: str | None = Field(
        None, description="Namespace of the RayJobs; None = the step pod's own, else the kube context's."
    )
    service_account: str | None = Field(None, description="ServiceAccount of the Ray pods (storage access).")
    env_secret: str | None = Field(
        None, description="Secret whose keys become environment variables of the Ray pods (S3, MLflow)."
    )
    workdir: str = Field("/home/ray/rsc", description="Project folder inside the image (configs, templates).")
    rayjob_template: str = Field("k8s/rayjob.yaml", description="RayJob template the launcher fills in.")
    head_cpus: Quantity = Field("2", description="CPU request and limit of the Ray head.")
    head_memory: Quantity = Field("8Gi", description="Memory request and limit of the Ray head.")
    cpu_workers: int = Field(2, ge=0, description="CPU worker pods (RLlib env runners, Tune trials).")
    cpu_worker_cpus: Quantity = Field("4", description="CPUs of one CPU worker.")
    cpu_worker_memory: Quantity = Field("8Gi", description="Memory of one CPU worker.")
    gpus: int = Field(0, ge=0, description="GPUs for RLlib learners in all; 0 = no GPU worker group.")
    gpus_per_worker: int = Field(1, ge=1, description="GPUs of one GPU worker pod (nvidia.com/gpu).")
    gpu_worker_cpus: Quantity = Field("8", description="CPUs of one GPU worker.")
    gpu_worker_memory: Quantity = Field("32Gi", description="Memory of one GPU worker.")
    gpu_node_selector: dict[str, str] = Field(
        {"nvidia.com/gpu.present": "true"}, description="Node labels GPU workers must land on."
    )
    gpu_tolerations: tuple[Toleration, ...] = Field(
        (Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),),
        description="Tolerations of GPU workers for tainted GPU nodes.",
    )
    active_deadline_s: int = Field(21600, ge=60, description="RayJob activeDeadlineSeconds: fail after this.")
    ttl_after_finished_s: int = Field(600, ge=0, description="Keep a finished RayJob this long, then delete.")
    backoff_limit: int = Field(0, ge=0, description="RayJob retries on a new cluster (KFP retries steps).")
    wait_timeout_s: float = Field(
        22200.0, gt=0, description="The step gives up waiting (and deletes the RayJob) after this."
    )
    watch_s: int = Field(60, ge=1, description="Length of one watch request before the status is re-read.")

    @model_validator(mode="after")
    def _whole_gpu_workers(self) -> ClusterSettings:
        if self.gpus % self.gpus_per_worker:
            raise ValueError(
                f"cluster.gpus ({self.gpus}) must be a multiple of "
                f"cluster.gpus_per_worker ({self.gpus_per_worker})"
            )
        if self.cpu_workers + self.gpu_workers == 0:
            raise ValueError(
                "cluster.cpu_workers and cluster.gpus are both 0: the Ray cluster would have no workers"
            )
        return self

    @property
    def gpu_workers(self) -> int:
        """GPU worker pods: one RLlib learner per GPU, ``gpus_per_worker`` learners per pod."""
        return self.gpus // self.gpus_per_worker

    @property
    def learner_overrides(self) -> tuple[str, ...]:
        """``rllib_configs`` overrides that put one remote learner on each GPU (none without GPUs)."""
        if not self.gpus:
            return ()
        return (f"resources.num_learners={self.gpus}", "resources.num_gpus_per_learner=1")


class Settings(Section):
    """All settings of one run."""

    run: RunSettings = RunSettings()
    storage: StorageSettings = StorageSettings()
    data: DataSettings = DataSettings()
    features: FeatureSettings = FeatureSettings()
    split: SplitSettings = SplitSettings()
    env: EnvSettings = EnvSettings()
    train: TrainSettings = TrainSettings()
    tune: TuneSettings = TuneSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    registry: RegistrySettings = RegistrySettings()
    serve: ServeSettings = ServeSettings()
    paper: PaperSettings = PaperSettings()
    monitor: MonitorSettings = MonitorSettings()
    ray: RaySettings = RaySettings()
    cluster: ClusterSettings = ClusterSettings()

    @model_validator(mode="after")
    def _dates_in_order(self) -> Settings:
        dates = [self.data.start, self.split.train_end, self.split.validation_end, self.data.end]
        if dates != sorted(dates):
            raise ValueError(
                "dates must increase: data.start < split.train_end < split.validation_end < data.end, "
                f"got {dates}"
            )
        return self

    @model_validator(mode="after")
    def _portfolio_has_assets(self) -> Settings:
        symbols = self.data.symbols
        if self.env.kind == "portfolio" and len(symbols) < 2 and symbols != ("*",):
            raise ValueError(
                f"env.kind=portfolio allocates across two or more symbols, data.symbols has {list(symbols)}: "
                "add symbols or use env.kind=single"
            )
        return self

    @property
    def run_root(self) -> str:
        """URI under which every artifact of this execution is written: ``<root>/<name>[/<id>]``."""
        root = f"{self.storage.root.rstrip('/')}/{self.run.name}"
        return f"{root}/{self.run.id}" if self.run.id else root

    @property
    def frequency(self) -> str:
        """The bar size: ``data.frequency``, else Yahoo's interval for that source, else daily."""
        if self.data.frequency:
            return self.data.frequency
        return self.data.yfinance.interval if self.data.source == "yfinance" else "1d"

    @property
    def dataset_name(self) -> str:
        """The stored dataset the bars are versions of: ``data.dataset``, else derived from the source."""
        if self.data.dataset:
            return self.data.dataset
        where = self.data.source
        if self.data.source in ("csv", "parquet"):
            where += "-" + hashlib.sha256(str(self.data.path).encode()).hexdigest()[:8]
        basis = "-adj" if self.adjusted_prices else ""  # adjusted and traded prices are two histories
        return f"{where}-{universe_label(self.data.symbols)}-{self.frequency}{basis}"

    @property
    def adjusted_prices(self) -> bool:
        """Whether the bars are adjusted for splits and dividends (a history restated by every one)."""
        if self.data.price is not None:
            return self.data.price == "adj_close"
        return self.data.source == "yfinance" and self.data.yfinance.adjusted

    @property
    def model_name(self) -> str:
        """The registered model: ``registry.model_name``, else the lineage's derived name."""
        if self.registry.model_name:
            return self.registry.model_name
        strategy = self.registry.strategy or self.run.name
        return lineage_model_name(strategy, self.data.symbols, self.frequency, self.env.kind)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured one, else SQLite beside a file:// storage root."""
        if self.registry.tracking_uri:
            return self.registry.tracking_uri
        if not self.storage.root.startswith("file://"):
            raise ValueError("registry.tracking_uri must be set when storage.root is not file://")
        return f"sqlite:///{self.storage.root.removeprefix('file://')}/mlflow.db"
