"""Typed, frozen run settings: one model per concern, every field documented.

The YAML files under configs/ map one to one onto :class:`Settings`. Unknown keys and wrong types
are rejected by pydantic (``extra="forbid"``) and reported by :mod:`rsc.config.loader` with the key
and the file that set it.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """Base of every settings section: strict keys, immutable after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RunSettings(Section):
    name: str = Field("demo", description="Run name; every artifact of the run lives under <root>/<name>/.")
    seed: int = Field(7, description="Seed for every random draw of the run.")


class StorageSettings(Section):
    root: str = Field("file://./artifacts", description="Storage root URI: file:// or s3://.")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (MinIO, a loopback server); None = AWS."
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


class DataSettings(Section):
    source: Literal["bundled", "csv", "parquet"] = Field("bundled", description="Where bars come from.")
    symbols: tuple[str, ...] = Field(("SPX",), description="Symbols to load (bundled: SPX, GOOG).")
    path: str | None = Field(None, description="File or folder URI for the csv and parquet sources.")
    start: date = Field(date(2010, 1, 1), description="First bar date (inclusive).")
    end: date = Field(date(2018, 12, 31), description="Last bar date (inclusive).")

    @field_validator("symbols")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is required")
        return value


class IndicatorSpec(Section):
    name: str = Field(description="Indicator name from rsc.core.features.INDICATORS.")
    window: int = Field(14, ge=1, description="Trailing window (bars).")


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


class SplitSettings(Section):
    train_end: date = Field(date(2016, 12, 31), description="Last date of the training part.")
    validation_end: date = Field(
        date(2017, 12, 31), description="Last date of the validation part; the rest is test."
    )


class EnvSettings(Section):
    window: int = Field(30, ge=1, description="Bars of features in one observation.")
    positions: tuple[float, ...] = Field(
        (0.0, 1.0), description="Discrete target positions (fraction of equity; negative = short)."
    )
    initial_cash: float = Field(100_000.0, gt=0, description="Starting capital.")
    commission_bps: float = Field(5.0, ge=0, description="Commission on traded notional, basis points.")
    slippage_bps: float = Field(2.0, ge=0, description="Slippage on traded notional, basis points.")
    episode_length: int = Field(252, ge=2, description="Bars per training episode (random start).")
    reward: str = Field("log_return", description="Reward name from rsc.core.rewards.REWARDS.")
    ruin_fraction: float = Field(
        0.5, gt=0, lt=1, description="Episode terminates below this equity fraction."
    )


class TrainSettings(Section):
    algorithm_config: str = Field("rllib_configs/ppo.yaml", description="RLlib algorithm YAML.")
    iterations: int | None = Field(None, ge=1, description="Overrides the YAML's stop.training_iteration.")
    eval_every: int = Field(2, ge=1, description="Validate with the backtest metric every N iterations.")


class TuneSettings(Section):
    enabled: bool = Field(True, description="Run the hyperparameter search before training.")
    num_samples: int | None = Field(None, ge=1, description="Overrides the YAML's tune.num_samples.")
    iterations: int | None = Field(None, ge=1, description="Overrides the YAML's iterations per trial.")


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
    model_name: str = Field("rsc-policy", description="Registered model name.")
    promotion_metric: str = Field("sharpe", description="Test-period metric the promotion gate compares.")
    min_improvement: float = Field(0.0, description="Margin the challenger must win by.")
    require_beat_benchmark: bool = Field(True, description="Also require beating buy-and-hold.")


class ServeSettings(Section):
    host: str = Field("127.0.0.1", description="HTTP host of Ray Serve.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of Ray Serve.")
    app_name: str = Field("rsc", description="Ray Serve application name.")
    route_prefix: str = Field("/", description="Route prefix of the application.")
    num_replicas: int = Field(1, ge=1, description="Replicas of the policy deployment.")


class PaperSettings(Section):
    bars: int = Field(20, ge=1, description="Test bars the paper replay trades through.")
    strategy: str = Field("rsc-demo", description="Strategy tag on paper-trading metrics.")


class MonitorSettings(Section):
    enabled: bool = Field(True, description="Send DogStatsD metrics.")
    statsd_host: str = Field("127.0.0.1", description="DogStatsD host (the Datadog agent).")
    statsd_port: int = Field(8125, ge=1, le=65535, description="DogStatsD UDP port.")
    environment: str = Field("local", description="`env` tag on every metric.")


class RaySettings(Section):
    address: str | None = Field(
        None, description="Ray cluster address; None starts a local head for the run (127.0.0.1)."
    )


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

    @model_validator(mode="after")
    def _dates_in_order(self) -> Settings:
        dates = [self.data.start, self.split.train_end, self.split.validation_end, self.data.end]
        if dates != sorted(dates):
            raise ValueError(
                "dates must increase: data.start < split.train_end < split.validation_end < data.end, "
                f"got {dates}"
            )
        return self

    @property
    def run_root(self) -> str:
        """URI under which every artifact of this run is written."""
        return f"{self.storage.root.rstrip('/')}/{self.run.name}"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured one, else SQLite beside a file:// storage root."""
        if self.registry.tracking_uri:
            return self.registry.tracking_uri
        if not self.storage.root.startswith("file://"):
            raise ValueError("registry.tracking_uri must be set when storage.root is not file://")
        return f"sqlite:///{self.storage.root.removeprefix('file://')}/mlflow.db"
