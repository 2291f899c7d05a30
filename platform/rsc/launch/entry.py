"""What every pipeline step does first: its logs and progress events, settings parsed from the JSON it
was handed (:func:`step`).

The pipeline's run parameters (symbols, dates, algorithm config, HPO budget, GPUs, launcher) are
applied here, once, as ``key=value`` overrides of the settings, so they are checked like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rsc.config import Settings, load_settings
from rsc.config.loader import default_config_paths, override_settings
from rsc.launch.logs import FORMAT, step_logs

# Pipeline parameter -> (settings key it overrides, the default that means "keep the settings' value").
PARAMETERS: dict[str, tuple[str, object]] = {
    "symbols": ("data.symbols", ""),
    "start": ("data.start", ""),
    "end": ("data.end", ""),
    "algorithm_config": ("train.algorithm_config", ""),
    "num_samples": ("tune.num_samples", 0),
    "gpus": ("cluster.gpus", -1),
    "launcher": ("cluster.launcher", ""),
}
# An empty settings JSON means: the configuration shipped in the image for clusters.
CLUSTER_ENVIRONMENT = "cluster"


def settings_from_json(settings_json: str) -> Settings:
    """Logging on (INFO, to stderr), then the settings the step was handed."""
    logging.basicConfig(level=logging.INFO, format=FORMAT, force=True)
    return Settings.model_validate_json(settings_json)


@contextmanager
def step(stage: str, settings_json: str) -> Iterator[Settings]:
    """One pipeline step: its log file and start/end events under ``rsc run``, and its settings."""
    with step_logs(stage):
        yield settings_from_json(settings_json)


def parameter_overrides(parameters: Mapping[str, object]) -> list[str]:
    """``{"gpus": 2, "symbols": "SPX,GOOG"}`` -> ``["cluster.gpus=2", "data.symbols=[SPX,GOOG]"]``.

    A parameter left at its "unset" default (or None) keeps the settings' value.
    """
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown pipeline parameter(s) {unknown}; known: {sorted(PARAMETERS)}")
    overrides = []
    for name, value in parameters.items():
        key, unset = PARAMETERS[name]
        if value is None or value == unset:
            continue
        if name == "symbols":
            value = "[" + ",".join(part.strip() for part in str(value).split(",")) + "]"
        overrides.append(f"{key}={value}")
    return overrides


def resolve_settings(settings_json: str, parameters: Mapping[str, object]) -> Settings:
    """The run's settings: the JSON given (or, if empty, configs/base.yaml + configs/cluster.yaml of
    the image) with the pipeline parameters on top."""
    if settings_json.strip():
        settings = settings_from_json(settings_json)
    else:
        logging.basicConfig(level=logging.INFO, force=True)
        settings = load_settings(default_config_paths(CLUSTER_ENVIRONMENT))
    return override_settings(settings, parameter_overrides(parameters))
