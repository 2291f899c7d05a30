"""The RayJob of one step: the template ``k8s/rayjob.yaml`` filled in from the ``cluster:`` settings.

Pure functions from settings to a ``ray.io/v1`` RayJob dict; nothing here talks to a cluster. The
template is a complete, commented RayJob; this module only replaces the fields it marks "(filled)".
"""

from __future__ import annotations

import copy
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rsc.config.settings import ClusterSettings

GROUP = "ray.io"
VERSION = "v1"
PLURAL = "rayjobs"
CPU_GROUP = "cpu"
GPU_GROUP = "gpu"
GPU_RESOURCE = "nvidia.com/gpu"
# KubeRay names the cluster <rayjob>-<5 chars> and its head Service <cluster>-head-svc; Service names
# are DNS labels (63 characters), so a RayJob name stays well below that.
MAX_NAME = 40


def resolve_template(path: str, workdir: str) -> Path:
    """The template as given, else under the image's project folder, else under this checkout."""
    for candidate in (Path(path), Path(workdir) / path, Path(__file__).resolve().parents[3] / path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"RayJob template not found: {path} (looked in ., {workdir} and the project root)"
    )


def load_template(path: str | Path) -> dict[str, Any]:
    """Read the RayJob template and check that it has the parts the launcher fills in."""
    document = yaml.safe_load(Path(path).read_text())
    if not isinstance(document, dict) or document.get("kind") != "RayJob":
        raise ValueError(f"{path}: not a RayJob manifest")
    groups = {g.get("groupName") for g in document["spec"]["rayClusterSpec"].get("workerGroupSpecs", [])}
    missing = {CPU_GROUP, GPU_GROUP} - groups
    if missing:
        raise ValueError(f"{path}: workerGroupSpecs lacks the group(s) {sorted(missing)}")
    return document


def rayjob_name(stage: str, run_name: str) -> str:
    """``rsc-<stage>-<run>-<6 hex>``: a DNS label, unique per launch (a KFP retry gets a new one)."""
    run = re.sub(r"[^a-z0-9-]+", "-", run_name.lower()).strip("-") or "run"
    prefix = f"rsc-{stage}-{run}"[: MAX_NAME - 7].rstrip("-")
    return f"{prefix}-{secrets.token_hex(3)}"


def entrypoint(workdir: str, command: Sequence[str]) -> str:
    """The shell line the RayJob runs on the head: from the project folder, every argument quoted."""
    return f"cd {shlex.quote(workdir)} && {shlex.join(command)}"


def _resources(cpus: str, memory: str, gpus: int = 0) -> dict[str, dict[str, Any]]:
    """Requests equal to limits: a Ray node's resources must not be overcommitted or it gets evicted."""
    amounts: dict[str, Any] = {"cpu": cpus, "memory": memory}
    if gpus:
        amounts[GPU_RESOURCE] = gpus
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _fill_pod(
    template: dict[str, Any], cluster: ClusterSettings, image: str, resources: dict, labels: Mapping[str, str]
) -> None:
    spec = template["spec"]
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    if cluster.service_account:
        spec["serviceAccountName"] = cluster.service_account
    else:
        spec.pop("serviceAccountName", None)
    container = spec["containers"][0]
    container["image"] = image
    container["resources"] = resources
    if cluster.env_secret:
        container["envFrom"] = [{"secretRef": {"name": cluster.env_secret}}]


def _size_group(group: dict[str, Any], replicas: int) -> None:
    group["replicas"] = group["minReplicas"] = group["maxReplicas"] = replicas


def build_rayjob(
    cluster: ClusterSettings,
    template: Mapping[str, Any],
    *,
    name: str,
    stage: str,
    command: Sequence[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """The RayJob that runs ``command`` (a ``python -m rsc stage ...`` line) on a throwaway Ray cluster.

    Args:
        template: the parsed ``k8s/rayjob.yaml`` (see :func:`load_template`); it is not modified.
        env: environment variables of the job's driver (Ray runtime env).
    """
    job = copy.deepcopy(dict(template))
    labels = {"rsc.io/stage": stage}
    job["metadata"] = {**job.get("metadata", {}), "name": name}
    job["metadata"].pop("namespace", None)
    job["metadata"].setdefault("labels", {}).update(labels)
    spec = job["spec"]
    spec["entrypoint"] = entrypoint(cluster.workdir, command)
    spec["runtimeEnvYAML"] = yaml.safe_dump({"env_vars": dict(env)}, sort_keys=True)
    spec["shutdownAfterJobFinishes"] = True
    spec["ttlSecondsAfterFinished"] = cluster.ttl_after_finished_s
    spec["activeDeadlineSeconds"] = cluster.active_deadline_s
    spec["backoffLimit"] = cluster.backoff_limit

    ray_cluster = spec["rayClusterSpec"]
    head = ray_cluster["headGroupSpec"]
    _fill_pod(
        head["template"], cluster, cluster.image, _resources(cluster.head_cpus, cluster.head_memory), labels
    )

    groups = {group["groupName"]: group for group in ray_cluster["workerGroupSpecs"]}
    cpu, gpu = groups[CPU_GROUP], groups[GPU_GROUP]
    _size_group(cpu, cluster.cpu_workers)
    _fill_pod(
        cpu["template"],
        cluster,
        cluster.image,
        _resources(cluster.cpu_worker_cpus, cluster.cpu_worker_memory),
        labels,
    )
    workers = [cpu]
    if cluster.gpus:
        _size_group(gpu, cluster.gpu_workers)
        _fill_pod(
            gpu["template"],
            cluster,
            cluster.gpu_image,
            _resources(cluster.gpu_worker_cpus, cluster.gpu_worker_memory, cluster.gpus_per_worker),
            labels,
        )
        pod = gpu["template"]["spec"]
        pod["nodeSelector"] = dict(cluster.gpu_node_selector)
        pod["tolerations"] = [t.model_dump(exclude_none=True) for t in cluster.gpu_tolerations]
        if not pod["nodeSelector"]:
            del pod["nodeSelector"]
        if not pod["tolerations"]:
            del pod["tolerations"]
        workers.append(gpu)
    ray_cluster["workerGroupSpecs"] = workers
    return job
