"""Model lineages: one strategy on one universe at one bar frequency, one registered model each.

A champion is only ever compared with challengers that trade the same instruments at the same bar
frequency: the registered model's name derives from the three (``rsc-<strategy>-<universe>-<frequency>``,
e.g. ``rsc-demo-spx-1d``) unless ``registry.model_name`` names one, and every version carries its
actual universe, frequency and the last date its training and selection saw as tags, which the gate
reads before it compares anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rsc.config import Settings
from rsc.config.lineage import lineage_model_name
from rsc.registry.tracking import CHAMPION, resolve_alias, set_alias, tag_version

log = logging.getLogger(__name__)

UNIVERSE_TAG = "rsc.lineage.universe"
FREQUENCY_TAG = "rsc.lineage.frequency"
STRATEGY_TAG = "rsc.lineage.strategy"
KIND_TAG = "rsc.lineage.kind"  # single (one asset at a time) or portfolio (weights across the universe)
SEEN_UNTIL_TAG = "rsc.lineage.seen_until"  # last bar date its training and selection used
TEST_WINDOW_TAG = "rsc.lineage.test_window"  # first..last date of its test window
CONDITIONS_TAG = "rsc.lineage.conditions"  # costs, fill and annualisation its test figures assume
LEGACY_MODEL_NAME = "rsc-policy"  # the one name every lineage shared before lineages existed
MIGRATED_TAG = "rsc.lineage.migrated_to"  # on a legacy version: <lineage model>/<version> of its copy
HISTORY_TAG = "rsc.champion_history"  # rsc.registry.promotion's record of champions, oldest first

_MINUTE = np.timedelta64(60, "s")
_DAY = np.timedelta64(1, "D")
_MONTH_DAYS = (28, 31)


def bar_frequency(timestamps: np.ndarray) -> str:
    """The bars' frequency as a label: ``5m``, ``1h``, ``1d``, ``1wk``, ``1mo`` (median spacing).

    Raises:
        ValueError: fewer than two distinct timestamps.
    """
    stamps = np.asarray(timestamps, dtype="datetime64[s]")
    if not (stamps[1:] > stamps[:-1]).all():  # validated bars are sorted and unique already
        stamps = np.unique(stamps)
    if len(stamps) < 2:
        raise ValueError("the bar frequency needs at least two distinct timestamps")
    # The median of int64 seconds: numpy's median of timedelta64 values takes several times as long.
    spacing = np.timedelta64(int(np.median(np.diff(stamps.view(np.int64)))), "s")
    if spacing < _DAY:
        minutes = max(1, round(spacing / _MINUTE))
        return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
    days = round(spacing / _DAY)
    if days in (1, 7):
        return "1d" if days == 1 else "1wk"
    if _MONTH_DAYS[0] <= days <= _MONTH_DAYS[1]:
        return "1mo"
    return f"{days}d"


@dataclass(frozen=True)
class Lineage:
    """What makes two models comparable: the strategy, the instruments and the bar frequency."""

    strategy: str
    universe: tuple[str, ...]
    frequency: str
    kind: str = "single"

    @property
    def name(self) -> str:
        return lineage_model_name(self.strategy, self.universe, self.frequency, self.kind)

    def describe(self) -> str:
        return f"{', '.join(self.universe)} at {self.frequency}"

    def tags(self) -> dict[str, str]:
        return {
            STRATEGY_TAG: self.strategy,
            UNIVERSE_TAG: ",".join(self.universe),
            FREQUENCY_TAG: self.frequency,
            KIND_TAG: self.kind,
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage | None:
        """The lineage a version's tags record (None for a version registered before lineages)."""
        if UNIVERSE_TAG not in tags or FREQUENCY_TAG not in tags:
            return None
        universe = tuple(s for s in tags[UNIVERSE_TAG].split(",") if s)
        return cls(tags.get(STRATEGY_TAG, ""), universe, tags[FREQUENCY_TAG], tags.get(KIND_TAG, "single"))

    def differs_from(self, other: Lineage) -> str | None:
        """Why ``other`` is not comparable with this lineage (None if it is)."""
        if set(self.universe) != set(other.universe):
            return f"it trades {', '.join(other.universe)}, not {', '.join(self.universe)}"
        if self.frequency != other.frequency:
            return f"its bars are {other.frequency}, not {self.frequency}"
        if self.kind != other.kind:
            return f"it is a {other.kind} policy, not a {self.kind} one"
        return None


def run_lineage(cfg: Settings, symbols: Iterable[str], timestamps: np.ndarray) -> Lineage:
    """The lineage of a run's model: its strategy, the symbols and the bar size its data really has."""
    return Lineage(
        cfg.registry.strategy or cfg.run.name,
        tuple(sorted(set(symbols))),
        bar_frequency(timestamps),
        cfg.env.kind,
    )


def _recorded_lineage(run_id: str) -> tuple[Lineage, dict[str, str]]:
    """A version's lineage and tags, read from the settings its run logged (``config.json``)."""
    config = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    data, registry = config.get("data", {}), config.get("registry", {})
    frequency = data.get("frequency") or (
        data.get("yfinance", {}).get("interval", "1d") if data.get("source") == "yfinance" else "1d"
    )
    strategy = registry.get("strategy") or config.get("run", {}).get("name", "policy")
    kind = config.get("env", {}).get("kind", "single")
    lineage = Lineage(strategy, tuple(sorted(data.get("symbols", ()))), frequency, kind)
    tags = dict(lineage.tags())
    if validation_end := config.get("split", {}).get("validation_end"):
        tags[SEEN_UNTIL_TAG] = str(validation_end)
    try:
        period = mlflow.artifacts.load_dict(f"runs:/{run_id}/metrics.json").get("period") or {}
        if period.get("start") and period.get("end"):
            tags[TEST_WINDOW_TAG] = f"{str(period['start'])[:10]}..{str(period['end'])[:10]}"
    except MlflowException:
        pass
    return lineage, tags


def migrate_legacy_model(legacy: str = LEGACY_MODEL_NAME) -> dict[str, int | None]:
    """Copy the versions of the one model every lineage used to share into one model per lineage.

    Each version is copied into the model its run's settings derive (``rsc-<strategy>-<symbols>-<bar
    size>``), tagged with its lineage; each lineage's champion is its latest version in the legacy
    champion history. The legacy model is left as it was, so an endpoint still serving it keeps
    serving; a version copied once is not copied again. Returns lineage model -> its champion version.
    """
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name='{legacy}'"), key=lambda v: int(v.version))
    history_tag = client.get_registered_model(legacy).tags.get(HISTORY_TAG, "") if versions else ""
    history = [int(v) for v in history_tag.split(",") if v.strip()]
    champion = resolve_alias(legacy, CHAMPION)
    if champion is not None and (not history or history[-1] != champion):
        history.append(champion)
    copies: dict[int, tuple[str, int]] = {}
    for version in versions:
        if moved := version.tags.get(MIGRATED_TAG):
            name, number = moved.rsplit("/", 1)
            copies[int(version.version)] = (name, int(number))
            continue
        try:
            lineage, tags = _recorded_lineage(version.run_id)
        except (MlflowException, OSError, ValueError) as error:  # one unreadable version stops nothing
            log.warning(
                "%s v%s not migrated: its run's settings cannot be read: %s", legacy, version.version, error
            )
            continue
        copied = client.copy_model_version(f"models:/{legacy}/{version.version}", lineage.name)
        tag_version(lineage.name, int(copied.version), tags)
        client.set_model_version_tag(
            legacy, version.version, MIGRATED_TAG, f"{lineage.name}/{copied.version}"
        )
        copies[int(version.version)] = (lineage.name, int(copied.version))
    champions: dict[str, int | None] = {name: None for name, _ in copies.values()}
    for old in history:  # oldest first: the last one of each lineage wins
        if old in copies:
            name, number = copies[old]
            champions[name] = number
    for name, number in champions.items():
        if number is not None and resolve_alias(name, CHAMPION) is None:
            set_alias(name, CHAMPION, number)
    return champions
