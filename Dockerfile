# syntax=docker/dockerfile:1
# The project image: every pipeline step, RayJob, RayService and the MLflow server run it.
# One Ray version everywhere: RAY_VERSION equals pyproject's ray pin, rayVersion in k8s/rayjob.yaml and
# the chart, and the Ray version in the image tags (<version>-ray<RAY_VERSION>[-gpu]); a test checks it.
#
#   CPU: docker build -t ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0 .
#   GPU: docker build --build-arg VARIANT=gpu --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
#          -t ghcr.io/rsc-platform/rsc:0.1.0-ray2.60.0-gpu .
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
# cpu or gpu: which rayproject/ray variant to start from (gpu carries CUDA).
ARG VARIANT=cpu

# --- build: the project as a wheel (no compilers or sources left in the final image) ---------------
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT} AS build
WORKDIR /home/ray/build
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users platform ./platform
COPY --chown=ray:users pipelines ./pipelines
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /home/ray/wheels .

# --- runtime ---------------------------------------------------------------------------------------
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}
# torch's CPU build by default; the GPU image passes PyPI, whose torch wheels are the CUDA builds.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
WORKDIR /home/ray/rsc
# The base image's Ray stays (same version as the pin); pip adds the extras and the project's needs.
RUN --mount=type=bind,from=build,source=/home/ray/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && pip install --no-cache-dir "$(ls /tmp/wheels/rsc-*.whl)[cluster]"
# Read at run time from the working directory: run settings, algorithm configs, the RayJob template.
COPY --chown=ray:users configs ./configs
COPY --chown=ray:users rllib_configs ./rllib_configs
COPY --chown=ray:users k8s/rayjob.yaml ./k8s/rayjob.yaml
# The base image's non-root `ray` user (uid 1000, group users 100), numeric so that Kubernetes can
# check runAsNonRoot.
USER 1000:100
ENTRYPOINT ["rsc"]
CMD ["--help"]
