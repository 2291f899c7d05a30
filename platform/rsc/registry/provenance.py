"""What a run records about where it came from: the code version (the data hashes come from manifests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

MODEL_URI_TAG = "rsc.model_uri"  # the policy folder a run wrote; register finds the train run by it

# An image built from a commit sets this (there is no .git inside it); elsewhere git is asked.
COMMIT_VARIABLE = "RSC_GIT_COMMIT"


def git_commit() -> str:
    """The commit the running code comes from, or ``unknown``."""
    if os.environ.get(COMMIT_VARIABLE):
        return os.environ[COMMIT_VARIABLE]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def policy_tags(run: str, model_uri: str, checkpoint_uri: str, data: Mapping[str, str]) -> dict[str, str]:
    """Where a policy came from: the rsc run, the code version, its checkpoint and folder, and the data
    hashes (``rsc.data.<name>_sha256``)."""
    return {
        "rsc.run": run,
        "rsc.git_commit": git_commit(),
        "rsc.checkpoint_uri": checkpoint_uri,
        MODEL_URI_TAG: model_uri,
        **data,
    }
