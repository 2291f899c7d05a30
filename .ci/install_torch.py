"""Install torch's CPU build into the running interpreter's environment, wherever the machine is.

PyPI serves the multi-GB CUDA build of torch; PyTorch's own CPU index serves the CPU build. The CPU
index is probed first with a short timeout (pip's own timeout may be set to minutes here) and used when
it answers; otherwise pip's default configuration installs the version (a machine whose pip
configuration already finds the CPU wheel, or one without access to the CPU index). Either way the
build that ended up installed is printed. Usage: ``python .ci/install_torch.py torch==2.13.0``.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 5


def cpu_index_reachable() -> bool:
    try:
        with urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=PROBE_TIMEOUT_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(requirement: str) -> int:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if cpu_index_reachable():
        print(f"installing {requirement} from PyTorch's CPU index ({CPU_INDEX})", flush=True)
        done = subprocess.run([*pip, "--index-url", CPU_INDEX, requirement])
    else:
        print(f"PyTorch's CPU index is unreachable; installing {requirement} with pip's defaults", flush=True)
        done = subprocess.run([*pip, requirement])
    if done.returncode != 0:
        return done.returncode
    build = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda or '')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    version, cuda = build[0], build[1] if len(build) > 1 else None
    print(f"torch {version}: {'CUDA ' + cuda + ' build' if cuda else 'CPU build'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "torch"))
