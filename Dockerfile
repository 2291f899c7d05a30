# syntax=docker/dockerfile:1
# The project image: every pipeline step, RayJob, RayService and the MLflow server run it.
# One Ray version everywhere: RAY_VERSION equals pyproject's ray pin, rayVersion in k8s/rayjob.yaml and
# the chart, and the Ray version in the image tags (<version>-ray<RAY_VERSION>[-gpu]); a test checks it.
#
#   CPU: docker build -t ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0 .
#   GPU: docker build --build-arg VARIANT=gpu --build-arg TORCH_PIP_ARGS="--index-url https://pypi.org/simple" \
#          -t ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0-gpu .
#   Offline, with podman and no registry: `make image` (BASE is a Python base built from Debian packages,
#   torch's wheel comes from .build/wheels; see rehearsal/image.py).
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
# cpu or gpu: which rayproject/ray variant to start from (gpu carries CUDA).
ARG VARIANT=cpu
# Any image with Python 3.11 and a shell: the Ray image (Ray already installed) or a plain Debian one.
ARG BASE=rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}

# --- build: the project as a wheel (no compilers or sources left in the final image) ---------------
FROM ${BASE} AS build
# hadolint ignore=DL3002
USER 0
WORKDIR /build
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY pipelines ./pipelines
COPY .build/ca/ /usr/local/share/ca-certificates/
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN update-ca-certificates \
    && python3 -m venv /tmp/wheel-env \
    && /tmp/wheel-env/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime ---------------------------------------------------------------------------------------
FROM ${BASE}
# torch's CPU build by default; the GPU image passes PyPI, whose torch wheels are the CUDA builds; an
# offline build passes --no-index and finds the wheel the host downloaded in .build/wheels.
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
ARG TORCH_VERSION=2.13.0
USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Extra CA certificates of the build host (an intercepting proxy), when it has some; empty otherwise.
COPY .build/ca/ /usr/local/share/ca-certificates/
# One virtual environment for the project. It sees the base's own packages (the Ray image's Ray, same
# version as the pin) and keeps pip away from a distribution's system Python (PEP 668).
ENV VIRTUAL_ENV=/opt/rsc PATH=/opt/rsc/bin:$PATH PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN update-ca-certificates \
    && (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --gid 100 --create-home --shell /bin/bash ray) \
    && python3 -m venv --system-site-packages /opt/rsc
# hadolint ignore=DL3013,SC2086
RUN --mount=type=bind,source=.build/wheels,target=/tmp/host-wheels \
    pip install --no-cache-dir ${TORCH_PIP_ARGS} --find-links /tmp/host-wheels "torch==${TORCH_VERSION}"
# The project's own wheel installs with its dependency ranges (pyproject), hence no pins here; `make image`
# adds the versions the test suite ran with as constraints (.build/wheels/constraints.txt). The wheel is
# copied in (not mounted) so that a change of the code is a change of this layer.
COPY --from=build /wheels /tmp/rsc-wheels
# hadolint ignore=DL3013
RUN --mount=type=bind,source=.build/wheels,target=/tmp/host-wheels \
    if [ -f /tmp/host-wheels/constraints.txt ]; then export PIP_CONSTRAINT=/tmp/host-wheels/constraints.txt; fi \
    && pip install --no-cache-dir "$(ls /tmp/rsc-wheels/rsc-*.whl)[cluster]" \
    && rm -rf /tmp/rsc-wheels
# Read at run time from the working directory: run settings, algorithm configs, the RayJob template.
WORKDIR /home/ray/rsc
COPY --chown=1000:100 configs ./configs
COPY --chown=1000:100 rllib_configs ./rllib_configs
COPY --chown=1000:100 k8s/rayjob.yaml ./k8s/rayjob.yaml
# The non-root `ray` user (uid 1000, group users 100; the Ray image's own), numeric so that Kubernetes
# can check runAsNonRoot.
USER 1000:100
ENTRYPOINT ["rsc"]
CMD ["--help"]
