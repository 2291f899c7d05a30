"""``rsc submit --host URL``: compile the pipeline and start a run on a Kubeflow Pipelines server.

Settings come from configs/base.yaml + configs/cluster.yaml (``--env`` picks another overlay) and
``key.sub=value`` overrides; ``name=value`` arguments whose name is a pipeline parameter (``gpus=2``,
``symbols=SPX,GOOG``) are passed as run parameters. The bearer token is ``$KFP_TOKEN``, else the
current kube config user's token, else none. ``--schedule CRON`` creates a recurring run instead (Kubeflow
Pipelines' cron: six fields, seconds first; a five-field expression gets "0" seconds): each scheduled run
is a new execution with its own run id, and caching is off unless asked for, so that every run ingests
the data anew.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rsc.config import ConfigError, load_settings
from rsc.config.loader import default_config_paths

TOKEN_VARIABLE = "KFP_TOKEN"
# Types of pipeline parameters in the compiled spec -> how a command-line value becomes one.
PARAMETER_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str}


def bearer_token() -> str | None:
    """``$KFP_TOKEN``, else the kube config user's token (looked up only when needed)."""
    if os.environ.get(TOKEN_VARIABLE):
        return os.environ[TOKEN_VARIABLE]
    from rsc.cluster.kubeconfig import kube_config_token

    return kube_config_token()


def parameter_types(package: Path) -> dict[str, Any]:
    """Pipeline parameter -> Python type, read from the compiled pipeline spec."""
    spec = next(yaml.safe_load_all(package.read_text()))  # the second document is platform config
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    return {name: PARAMETER_TYPES.get(p["parameterType"], str) for name, p in parameters.items()}


def split_arguments(items: list[str], types: Mapping[str, Any]) -> tuple[list[str], list[str], dict]:
    """Positional arguments -> (YAML files, settings overrides, pipeline parameters)."""
    files, overrides, parameters = [], [], {}
    for item in items:
        if "=" not in item:
            files.append(item)
            continue
        key, _, value = item.partition("=")
        if "." in key:
            overrides.append(item)
        elif key in types and key != "settings_json":
            try:
                parameters[key] = types[key](value)
            except ValueError:
                raise ConfigError(
                    f"pipeline parameter {key}={value!r}: not a {types[key].__name__}"
                ) from None
        else:
            known = ", ".join(sorted(k for k in types if k != "settings_json"))
            raise ConfigError(
                f"{key!r} is neither a settings key (section.key) nor a pipeline parameter ({known})"
            )
    return files, overrides, parameters


def cron_expression(text: str) -> str:
    """Kubeflow Pipelines' six-field cron (seconds first); a five-field one runs at second 0."""
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,?A-Za-z-]+", f) for f in fields):
        raise ConfigError(
            f"--schedule {text!r}: expected a cron expression of 5 fields (minute hour day month weekday) "
            "or 6 (seconds first), e.g. '0 22 * * 1-5' for weekdays at 22:00"
        )
    return " ".join(fields)


def submit(
    host: str,
    items: list[str],
    environment: str = "cluster",
    experiment: str | None = None,
    run_name: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
    enable_caching: bool | None = None,
    image: str | None = None,
    schedule: str | None = None,
) -> str:
    """Start one run (or, with ``schedule``, a recurring run) and return its URL in the Kubeflow
    Pipelines UI.

    ``image`` runs every step, and the RayJobs they launch, in that image (the pipeline's ``image``
    parameter and ``cluster.image``).
    """
    import kfp

    from pipelines.pipeline import compile_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        package = compile_pipeline(Path(tmp) / "pipeline.yaml")
        files, overrides, parameters = split_arguments(items, parameter_types(package))
        if image:
            parameters["image"] = image
            overrides = [*overrides, f"cluster.image={image}"]
        settings = load_settings(files or default_config_paths(environment), overrides)
        client = kfp.Client(host=host, existing_token=bearer_token())
        arguments = {"settings_json": settings.model_dump_json(), **parameters}
        if schedule is not None:
            cron = cron_expression(schedule)
            if settings.run.id is not None:
                raise ConfigError("--schedule with run.id set: every run would write over the last; unset it")
            found = client.create_experiment(experiment or settings.registry.experiment, namespace=namespace)
            recurring = client.create_recurring_run(
                experiment_id=found.experiment_id,
                job_name=run_name or f"{settings.run.name}-schedule",
                description=f"rsc: {settings.run.name} on cron {cron}",
                cron_expression=cron,
                max_concurrency=1,  # a run still going when the next is due: the next waits
                no_catchup=True,  # after a pause, one run now, not every missed one
                params=arguments,
                pipeline_package_path=str(package),
                enable_caching=enable_caching if enable_caching is not None else False,
                service_account=service_account,
            )
            return f"{host.rstrip('/')}/#/recurringrun/details/{recurring.recurring_run_id}"
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments,
            run_name=run_name or f"{settings.run.name}",
            experiment_name=experiment or settings.registry.experiment,
            namespace=namespace,
            service_account=service_account,
            enable_caching=enable_caching,
        )
    return f"{host.rstrip('/')}/#/runs/details/{result.run_id}"


def cmd_submit(args: argparse.Namespace) -> int:
    url = submit(
        args.host,
        args.config,
        environment=args.env,
        experiment=args.experiment,
        run_name=args.run_name,
        namespace=args.namespace,
        service_account=args.service_account,
        enable_caching=False if args.no_cache else None,
        image=args.image,
        schedule=args.schedule,
    )
    print(url)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``rsc submit``."""
    submit_ = commands.add_parser("submit", help="start a run of the pipeline on a Kubeflow Pipelines server")
    submit_.add_argument("config", nargs="*", help="YAML files, section.key=value overrides, param=value")
    submit_.add_argument("--host", required=True, help="Kubeflow Pipelines API URL")
    submit_.add_argument("--experiment", help="experiment name (default: registry.experiment)")
    submit_.add_argument("--run-name", help="run name (default: run.name)")
    submit_.add_argument(
        "--env", default="cluster", help="settings overlay under configs/ (default: cluster)"
    )
    submit_.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installs)")
    submit_.add_argument("--service-account", help="ServiceAccount of the run's pods (needs the RayJob Role)")
    submit_.add_argument("--image", help="project image of every step and RayJob (default: the release's)")
    submit_.add_argument(
        "--schedule",
        metavar="CRON",
        help="create a recurring run on this cron schedule instead of one run (e.g. '0 22 * * 1-5')",
    )
    submit_.add_argument(
        "--no-cache", action="store_true", help="run every step even if a cached result exists"
    )
    submit_.set_defaults(func=cmd_submit)
