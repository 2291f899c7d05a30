"""``make image``: the project image built for real with podman, with nothing pulled from a registry.

The production build starts from the Ray image (``BASE``, a build argument). No registry is reachable
here, so the offline build starts from a Python base made from Debian packages (mmdebstrap, then
``podman import``), made once and kept. torch's CPU wheel (and its dependencies) are downloaded on
the host first, as this machine's pip finds them, and installed in the build from the build context;
the other dependencies get the versions of this checkout's environment (``pip freeze``) as
constraints, so the image runs what the tests ran. The host's extra CA certificates (an intercepting
proxy) go in only when the host has some. The image is ``localhost/rsc:<tag>``; its size is printed.
``--variant gpu`` builds the CUDA one (torch from PyPI).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rehearsal.podman import BUILD, PROJECT, ensure_installed, image_exists, podman

BASE_IMAGE = "localhost/rsc-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates,passwd"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CA = Path("/usr/local/share/ca-certificates")
TORCH = "torch==2.13.0"


def tag(variant: str) -> str:
    """``localhost/rsc:<version>-ray<ray>[-gpu]``, the tag of the chart's values under localhost/."""
    from pipelines.components import IMAGE

    name = IMAGE.rsplit("/", 1)[-1]
    return f"localhost/{name}{'-gpu' if variant == 'gpu' else ''}"


def build_base() -> None:
    """A minimal Debian bookworm with Python 3.11, imported as a podman image (about a minute)."""
    if image_exists(BASE_IMAGE):
        print(f"base image {BASE_IMAGE} is present")
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rsc-rootfs-") as rootfs:
        sources = [str(DEBIAN_SOURCES)] if DEBIAN_SOURCES.exists() else []
        subprocess.run(
            ["mmdebstrap", "--mode=root", "--variant=minbase", f"--include={BASE_PACKAGES}", "--quiet",
             "bookworm", rootfs, *sources],
            check=True,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", BASE_IMAGE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
    print(f"built {BASE_IMAGE} from Debian packages in {time.monotonic() - started:.0f}s")


def stage_context(variant: str) -> list[str]:
    """Fill .build/wheels (torch, CPU variant) and .build/ca; the build arguments that use them."""
    wheels, ca = BUILD / "wheels", BUILD / "ca"
    for folder in (wheels, ca):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / ".keep").touch()
    for certificate in HOST_CA.glob("*.crt"):
        shutil.copy2(certificate, ca / certificate.name)
    if variant == "gpu":
        return [
            "--build-arg",
            "VARIANT=gpu",
            "--build-arg",
            "TORCH_PIP_ARGS=--index-url https://pypi.org/simple",
        ]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), TORCH], check=True
    )
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = [line for line in freeze.splitlines() if "==" in line and not line.startswith("torch==")]
    (wheels / "constraints.txt").write_text("\n".join(pins) + "\n")  # the versions the tests ran with
    found = [w.name for w in wheels.glob("torch-*.whl")]
    if not found or "+cpu" not in found[0]:
        raise SystemExit(f"pip downloaded {found or 'no torch wheel'}: expected torch's CPU build")
    print(f"torch wheel from the host: {found[0]}")
    return ["--build-arg", "TORCH_PIP_ARGS=--no-index"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make image", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["cpu", "gpu"], default="cpu")
    args = parser.parse_args(argv)
    ensure_installed()
    build_base()
    build_args = stage_context(args.variant)
    name = tag(args.variant)
    started = time.monotonic()
    podman(
        "build", "--pull=never", "--network=host", "--layers", "--format=docker",
        "--file", str(PROJECT / "Dockerfile"), "--build-arg", f"BASE={BASE_IMAGE}", *build_args,
        "--tag", name, str(PROJECT),
    )  # fmt: skip
    size = int(podman("image", "inspect", "--format", "{{.Size}}", name, capture=True).stdout.strip())
    print(f"built {name} in {time.monotonic() - started:.0f}s; size {size / 1024**3:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
