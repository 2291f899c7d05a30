"""What a run records about where it came from: the code version (the data hashes come from manifests)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
