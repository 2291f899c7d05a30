"""Run the pipeline on this machine with KFP's local SubprocessRunner (each step its own process)."""

from pathlib import Path

from kfp import local

from pipelines.pipeline import local_pipeline


def run_locally(settings_json: str, pipeline_root: str | Path) -> str:
    """Execute the whole DAG in the current Python environment (no retries: a local failure is not
    transient); returns the deploy step's output."""
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True
    )
    task = local_pipeline(settings_json=settings_json)
    return task.output
