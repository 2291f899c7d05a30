"""Running one DAG stage: in this process, on a Ray cluster's Jobs API, or as a KubeRay RayJob.

Remote launchers submit ``python -m rsc stage NAME ...`` (see :func:`stage_command`) as their
entrypoint, so a stage runs the same way in a KFP step, on a KubeRay cluster and in a test.
:func:`launch_stage` is what the train, tune and deploy components call: in process for
``cluster.launcher: local``, as a Ray job on an existing cluster for ``ray-jobs``, as a RayJob for
``kuberay``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Mapping
from typing import Any

from rsc.config import Settings

log = logging.getLogger(__name__)

# Stage name -> the URIs (and names) its ``run(cfg, ...)`` takes, in order; one module per stage.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "features": ("bars",),
    "split": ("features",),
    "tune": ("split", "scaler"),
    "train": ("split", "scaler", "best_params"),
    "evaluate": ("split", "scaler", "model"),
    "register": ("split", "model", "metrics", "report"),
    "deploy": ("model_name", "version"),
}
# Where each stage's ``run`` lives: ``rsc.stages.<name>``, except deploy, which starts Serve (a sibling
# of the stages) and so sits above them.
STAGE_MODULES = {name: f"rsc.stages.{name}" for name in STAGE_INPUTS} | {"deploy": "rsc.launch.deploy"}


def run_stage(name: str, cfg: Settings, inputs: Mapping[str, str]) -> dict[str, Any]:
    """Call ``rsc.stages.<name>.run`` with ``inputs`` and return its result as a JSON-ready dict."""
    if name not in STAGE_INPUTS:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGE_INPUTS)}")
    expected = STAGE_INPUTS[name]
    missing = [key for key in expected if key not in inputs]
    extra = sorted(set(inputs) - set(expected))
    if missing or extra:
        raise ValueError(
            f"stage {name!r} takes inputs {list(expected)}; missing {missing}, unexpected {extra}"
        )
    module = importlib.import_module(STAGE_MODULES[name])
    result = module.run(cfg, *(inputs[key] for key in expected))
    return dataclasses.asdict(result)


def remote_settings(cfg: Settings) -> Settings:
    """The settings a stage gets on a Ray cluster: join that cluster, run in process there."""
    return cfg.model_copy(
        update={
            "ray": cfg.ray.model_copy(update={"address": "auto"}),
            "cluster": cfg.cluster.model_copy(update={"launcher": "local"}),
        }
    )


def stage_command(name: str, cfg: Settings, inputs: Mapping[str, str], result_uri: str) -> list[str]:
    """``python -m rsc stage NAME ...``: the entrypoint a remote launcher runs."""
    command = [
        "python",
        "-m",
        "rsc",
        "stage",
        name,
        "--settings-json",
        remote_settings(cfg).model_dump_json(),
    ]
    for key, value in inputs.items():
        command += ["--input", f"{key}={value}"]
    return [*command, "--result-uri", result_uri]


def launch_stage(name: str, cfg: Settings, inputs: Mapping[str, str]) -> dict[str, Any]:
    """Run a stage where ``cfg.cluster.launcher`` says, and return its result.

    With ``kuberay``, train and tune (and any other stage asked for) run as a RayJob. Deploy with
    ``serve.managed_by: rayservice`` (the cluster overlay) never starts Serve: the chart's long-lived
    RayService owns it, so the step checks its endpoint, whatever the launcher.
    """
    if name == "deploy" and cfg.serve.managed_by == "rayservice":
        from rsc.launch.deploy import check_rayservice

        return dataclasses.asdict(check_rayservice(cfg, inputs["model_name"], inputs.get("version")))
    if cfg.cluster.launcher == "local":
        return run_stage(name, cfg, inputs)
    if cfg.cluster.launcher == "ray-jobs":
        return _launch_on_ray_jobs(name, cfg, inputs)
    from rsc.cluster import kuberay, rayjob  # the kubernetes client only where a cluster is used
    from rsc.storage import Storage
    from rsc.storage.layout import RunLayout

    cluster = cfg.cluster
    job_name = rayjob.rayjob_name(name, cfg.run.label)
    result_uri = RunLayout(cfg.run_root).job_result(job_name)
    template = rayjob.load_template(rayjob.resolve_template(cluster.rayjob_template, cluster.workdir))
    body = rayjob.build_rayjob(
        cluster,
        template,
        name=job_name,
        stage=name,
        command=stage_command(name, cfg, inputs, result_uri),
        env={"RAY_AUTH_MODE": "token", "PYTHONUNBUFFERED": "1"},
    )
    outcome = kuberay.run_rayjob(body, cluster.namespace, cluster.wait_timeout_s, cluster.watch_s)
    log.info("%s finished on rayjob %s/%s in %.0fs", name, outcome.namespace, outcome.name, outcome.seconds)
    return Storage.from_settings(cfg.storage).read_json(result_uri)


def _launch_on_ray_jobs(name: str, cfg: Settings, inputs: Mapping[str, str]) -> dict[str, Any]:
    """Submit the stage to an existing cluster's Jobs API and read the result it stored."""
    import uuid

    from rsc.cluster import ray_jobs
    from rsc.storage import Storage
    from rsc.storage.layout import RunLayout

    submission_id = f"rsc-{cfg.run.label}-{name}-{uuid.uuid4().hex[:8]}"
    result_uri = RunLayout(cfg.run_root).job_result(submission_id)
    command = stage_command(name, cfg, inputs, result_uri)
    command[0] = cfg.cluster.jobs_python
    outcome = ray_jobs.run_job(
        cfg.cluster.jobs_address,
        command,
        submission_id,
        env={"RAY_AUTH_MODE": "token", "PYTHONUNBUFFERED": "1"},
        timeout_s=cfg.cluster.wait_timeout_s,
    )
    log.info("%s finished as Ray job %s in %.0fs", name, outcome.submission_id, outcome.seconds)
    return Storage.from_settings(cfg.storage).read_json(result_uri)
