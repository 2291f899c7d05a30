"""The ``ray-jobs`` launcher: submit ``python -m rsc stage ...`` to a running Ray cluster's Jobs API.

The job's logs are streamed to this process's log as they arrive; the step fails with the job's
message and the tail of its logs when the job fails, and the job is stopped if the wait times out.
Token authentication stays on: the client sends the cluster's token (``RAY_AUTH_TOKEN`` or
``~/.ray/auth_token``).
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass

from ray.job_submission import JobStatus, JobSubmissionClient

log = logging.getLogger(__name__)

TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


class RayJobsFailed(RuntimeError):
    """The submitted job ended without succeeding; the message carries Ray's reason and log tail."""


@dataclass(frozen=True)
class JobOutcome:
    submission_id: str
    status: str
    seconds: float


def run_job(
    address: str,
    command: list[str],
    submission_id: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 6 * 3600,
    poll_s: float = 1.0,
) -> JobOutcome:
    """Submit ``command`` as a Ray job, stream its logs, and wait for a terminal state."""
    client = JobSubmissionClient(address)
    started = time.monotonic()
    job_id = client.submit_job(
        entrypoint=shlex.join(command),
        submission_id=submission_id,
        runtime_env={"env_vars": dict(env or {})},
        metadata={"rsc.submission": submission_id},
    )
    log.info("submitted Ray job %s to %s", job_id, address)
    printed = 0
    status = client.get_job_status(job_id)
    while True:
        logs = client.get_job_logs(job_id)
        for line in logs[printed:].splitlines():
            log.info("[%s] %s", job_id, line)
        printed = len(logs)
        if status in TERMINAL:
            break
        if time.monotonic() - started > timeout_s:
            client.stop_job(job_id)
            raise RayJobsFailed(f"Ray job {job_id} did not finish within {timeout_s:.0f}s and was stopped")
        time.sleep(poll_s)
        status = client.get_job_status(job_id)
    if status != JobStatus.SUCCEEDED:
        lines = [line for line in client.get_job_logs(job_id).splitlines() if line.strip()]
        reason = lines[-1] if lines else client.get_job_info(job_id).message
        tail = "\n".join(lines[-20:])
        raise RayJobsFailed(
            f"Ray job {job_id} ended {status.value}: {reason}\n--- last log lines ---\n{tail}"
        )
    return JobOutcome(job_id, status.value, time.monotonic() - started)
