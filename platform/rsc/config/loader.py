"""YAML base + environment overlay + ``key=value`` overrides -> :class:`Settings`, parsed once.

Every leaf value remembers where it came from, so a bad key or a wrong type is reported as one
error naming the dotted key and the file (or the command line) that set it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rsc.config.settings import Settings

COMMAND_LINE = "the command line"
M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration problem, with the key and its source in the message."""


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, with a clear error for a missing file or a non-mapping document."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(document).__name__}"
        )
    return document


def parse_override(text: str) -> tuple[list[str], Any]:
    """``env.window=20`` -> (["env", "window"], 20); the value is read as YAML (numbers, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} from {COMMAND_LINE} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from error
    return key.strip().split("."), value


def _merge(
    target: dict[str, Any],
    sources: dict[tuple[str, ...], str],
    update: Mapping[str, Any],
    source: str,
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in update.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], sources, value, source, path)
            continue
        target[key] = dict(value) if isinstance(value, Mapping) else value
        for known in [p for p in sources if p[: len(path)] == path]:
            del sources[known]
        sources[path] = source


def _source_of(sources: Mapping[tuple[str, ...], str], loc: tuple[str, ...]) -> str:
    for length in range(len(loc), 0, -1):
        if loc[:length] in sources:
            return sources[loc[:length]]
    return "the defaults"


def _check_known_keys(model: type[BaseModel], data: Mapping[str, Any], sources, prefix=()) -> None:
    """Report an unknown key with its source before pydantic reports it without one."""
    for key, value in data.items():
        path = (*prefix, str(key))
        field = model.model_fields.get(str(key))
        if field is None:
            known = ", ".join(sorted(model.model_fields))
            raise ConfigError(
                f"unknown config key '{'.'.join(path)}' in {_source_of(sources, path)} (known here: {known})"
            )
        annotation = field.annotation
        if isinstance(value, Mapping) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _check_known_keys(annotation, value, sources, path)


def load_settings(paths: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Settings:
    """Merge YAML files in order, then ``key=value`` overrides, and validate into Settings."""
    return load_model(Settings, paths, overrides)


def override_settings(settings: Settings, overrides: Iterable[str]) -> Settings:
    """``settings`` with ``key=value`` overrides on top, validated again (errors name the key)."""
    return load_model(Settings, (), overrides, base=settings.model_dump(mode="json"))


def load_model(
    model: type[M],
    paths: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> M:
    """Merge ``base``, YAML files in order, then ``key=value`` overrides, and validate into ``model``."""
    merged: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    if base is not None:
        _merge(merged, sources, base, "the settings given")
    for path in paths:
        _merge(merged, sources, read_yaml(Path(path)), str(path))
    for text in overrides:
        keys, value = parse_override(text)
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        _merge(merged, sources, nested, COMMAND_LINE)
    _check_known_keys(model, merged, sources)
    try:
        return model.model_validate(merged)
    except ValidationError as error:
        raise config_error(error, sources) from None


def config_error(error: ValidationError, sources: Mapping[tuple[str, ...], str]) -> ConfigError:
    """The first pydantic error as one ConfigError naming the key and its source."""
    first = error.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(loc) or "(settings)"
    return ConfigError(
        f"bad config value for '{key}' in {_source_of(sources, loc)}: {first['msg']}"
        + (f" (got {first['input']!r})" if loc else "")
    )


def default_config_paths(environment: str = "local") -> list[Path]:
    """configs/base.yaml plus configs/<environment>.yaml from the project root or the working directory."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        base = root / "configs" / "base.yaml"
        if base.is_file():
            overlay = root / "configs" / f"{environment}.yaml"
            return [base, overlay] if overlay.is_file() else [base]
    return []
