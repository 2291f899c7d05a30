"""One run of the compiled pipeline with each step in a container of the image (kfp.local DockerRunner
against podman's Docker-compatible API), the way Kubeflow would start its pods.

Each step's command replaces the image's entrypoint, as in a Kubernetes pod. Its environment is what
the compiled pipeline declares: its own ``env`` and, for every
``secretAsEnv`` of its platform config, the keys of that Secret (the rehearsal hands the Secrets' data
in, as the cluster would hold it). Two things kfp.local does not do as a cluster does, and that this
runner does instead: a container image given by a pipeline parameter (``image``) is resolved from the
run's arguments, and a step's exit code and log are read before its container is removed (podman removes
a short-lived auto-removed container first, and kfp.local then reports a failed step as a success).

Usage (from rehearsal.run): ``python -m rehearsal.pipeline_run SPEC.json``; prints the deploy step's
output as the last line, or exits 1 naming the failed step and quoting its log.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

LABEL = "io.rsc.rehearsal"
PARAMETER = re.compile(r"^\{\{\$\.inputs\.parameters\['pipelinechannel--(\w+)'\]\}\}$")


class StepFailed(RuntimeError):
    """A step's container exited non-zero; the message quotes its log."""


def secret_environment(package: Path, arguments: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict:
    """Environment variables the compiled pipeline's ``secretAsEnv`` entries give its steps."""
    documents = list(yaml.safe_load_all(package.read_text()))
    spec, platform = documents[0], documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    defaults = {
        name: parameter.get("defaultValue")
        for name, parameter in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    env: dict[str, str] = {}
    for executor in platform.values():
        for entry in executor.get("secretAsEnv", []):
            reference = entry["secretNameParameter"]["componentInputParameter"]
            secret = secrets.get(str(arguments.get(reference, defaults.get(reference))), {})
            for mapping in entry["keyToEnv"]:
                if mapping["secretKey"] in secret:
                    env[mapping["envVar"]] = secret[mapping["secretKey"]]
                elif not entry.get("optional"):
                    raise KeyError(f"Secret {reference} lacks key {mapping['secretKey']}")
    return env


def _task_name(command: list[str]) -> str:
    """The KFP task a container runs, from the executor input on its command line."""
    for index, part in enumerate(command):
        if part == "--executor_input" and index + 1 < len(command):
            output = json.loads(command[index + 1])["outputs"]["outputFile"]
            return Path(output).parent.name
    return "step"


def container_runner(log_dir: Path, arguments: dict[str, Any]):
    """A replacement for kfp.local's ``run_docker_container``: resolves a parameter image, keeps each
    step's log in ``log_dir/<task>.log`` and returns the real exit code."""
    import docker

    def run(client, image: str, command: list[str], volumes: dict, **run_args) -> int:
        match = PARAMETER.match(image)
        if match:
            image = str(arguments[match.group(1)])
        task = _task_name(command)
        # Kubernetes runs a step's `command` in place of the image's ENTRYPOINT (`rsc`): so does this.
        container = client.containers.run(
            image=image,
            entrypoint=command[:1],
            command=command[1:],
            detach=True,
            volumes=volumes,
            auto_remove=False,
            **run_args,
        )
        try:
            code = container.wait()["StatusCode"]
            log = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        (log_dir / f"{task}.log").write_text(log)
        print(f"[{task}] exit {code}; log {log_dir / f'{task}.log'}", flush=True)
        if code != 0:
            tail = "\n".join(line for line in log.splitlines() if line.strip())[-4000:]
            raise StepFailed(f"step {task} failed (exit {code}); log {log_dir / f'{task}.log'}:\n{tail}")
        return code

    return run


def main(spec_path: str) -> int:
    from kfp import components, local
    from kfp.local import docker_task_handler

    spec = json.loads(Path(spec_path).read_text())
    package, root, log_dir = Path(spec["package"]), Path(spec["pipeline_root"]), Path(spec["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    arguments = spec["arguments"]
    docker_task_handler.run_docker_container = container_runner(log_dir, arguments)
    env = secret_environment(package, arguments, spec["secrets"])
    local.init(
        runner=local.DockerRunner(
            network_mode="host",
            extra_hosts=spec["hosts"],
            shm_size="1g",
            environment=env,
            labels={LABEL: spec["label"]},  # the rehearsal removes every step container it started
        ),
        pipeline_root=str(root),
        raise_on_error=True,
    )
    pipeline = components.load_component_from_file(str(package))
    try:
        task = pipeline(**arguments)
    except StepFailed as failure:
        print(f"FAILED: {failure}", flush=True)
        return 1
    print(task.output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
