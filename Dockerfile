# syntax=docker/dockerfile:1.7
#
# benchcal images, one Dockerfile, three targets:
#   docker build --target operator  -t ghcr.io/benchcal/operator:0.1.0  .   # kopf operator, no torch
#   docker build --target evaluator -t ghcr.io/benchcal/evaluator:0.1.0 .   # CUDA torch + Triton + reducer
#   docker build --target reducer   -t ghcr.io/benchcal/reducer:0.1.0   .   # pandas/scipy only
#
# Every final stage runs as the numeric user 65532 (so the kubelet can verify runAsNonRoot),
# writes only under /tmp (the operator mounts an emptyDir there, the root filesystem stays
# read-only) and starts through tini so SIGTERM (Kueue preemption, activeDeadlineSeconds)
# reaches Python. Pods should set `args`, not `command`, or tini is bypassed:
#   args: ["benchcal", "evaluate", ...]   (one process per container: no shell in between)
#
# Bases are pinned by exact tag. Release builds pin them by digest as well:
#   docker build --build-arg PYTHON_BASE=python:3.11.11-slim-bookworm@sha256:<digest> ...

# Python runtime of every stage: the wheel stage builds the benchcal wheel with it, and each final
# stage installs that wheel into a venv of its own interpreter.
ARG PYTHON_BASE=python:3.11.11-slim-bookworm
# CUDA flavour of the torch wheel. The wheel brings its own CUDA user-space libraries
# (cuBLAS, cuDNN, NCCL as nvidia-* wheels), so the node only needs the NVIDIA driver and
# no nvidia/cuda base image is stacked underneath (that would duplicate gigabytes).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# Which torch build the evaluator stage must end up with: cuda (release images) or cpu (CI and
# local test images, tests/images/build.py, where TORCH_INDEX_URL points at a CPU wheel).
ARG TORCH_FLAVOUR=cuda

# ---------------------------------------------------------------------------------------------
# wheel: build the benchcal wheel once; every image installs it, never the source tree.
FROM ${PYTHON_BASE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY benchcal/ benchcal/
COPY evaluator/ evaluator/
COPY reducer/ reducer/
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /dist .

# ---------------------------------------------------------------------------------------------
# runtime: what every final image shares; tini is the only package added here.
FROM ${PYTHON_BASE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# Every cache lives under /tmp: with readOnlyRootFilesystem it is the only writable path (the
# Jobs mount an emptyDir there), and it is the working directory, so relative paths land there too.
WORKDIR /tmp
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
LABEL org.opencontainers.image.source="https://github.com/benchcal/benchcal" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/bin/tini", "--"]

# Each final stage installs its venv in place (no builder venv copied across stages): the copy
# stored the evaluator's 2.9 GB venv twice and committed it once more, which is what filled the
# build machine's disk. Nothing is compiled where the images run: --only-binary=:all: admits
# wheels only. The benchcal wheel (14 MB) is copied from the wheel stage: buildah 1.28 (Debian
# bookworm's podman) cannot bind-mount a stage that came from its cache.
# The installs run as root before USER; pip byte-compiles as it installs, so imports on the
# read-only root never need to write .pyc files.

# ---------------------------------------------------------------------------------------------
# reducer: `benchcal reduce` in the reducer Job, and `benchcal publish`, the publisher sidecar of
# evaluator pods (the only container there with a token: this image runs no model code).
FROM runtime AS reducer
COPY --from=wheel /dist/ /dist/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: "$(ls /dist/benchcal-*.whl)[reducer,publish,s3,gcs]" \
 && /opt/venv/bin/python -c "import benchcal_reduce"
USER 65532:65532
CMD ["benchcal", "reduce", "--help"]

# ---------------------------------------------------------------------------------------------
# evaluator: `benchcal evaluate` (and `benchcal reduce`) in GPU Jobs.
FROM runtime AS evaluator
ARG TORCH_VERSION
ARG TORCH_INDEX_URL
ARG TORCH_FLAVOUR
# Run-time toolchains, not build tools: Triton compiles its small CUDA driver shim with gcc and
# the libc headers the first time a kernel launches (the shim lands in TRITON_CACHE_DIR, under
# /tmp); the code benchmarks (human_eval_cpp, human_eval_js) compile and run samples with g++ and
# node (benchcal_eval.sandbox.TOOLCHAINS); without them such a pair fails, it is never scored.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev nodejs \
 && rm -rf /var/lib/apt/lists/*
# torch from the PyTorch index first (exact version; its own layer, the largest), then the rest
# from PyPI: pyproject's torch==2.13.0 is already satisfied by the local-version (+cu128/+cpu) wheel.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY --from=wheel /dist/ /dist/
RUN /opt/venv/bin/pip install --only-binary=:all: \
      "$(ls /dist/benchcal-*.whl)[evaluator,triton,reducer,publish,s3,gcs]" \
 && /opt/venv/bin/python -c "import benchcal_eval, benchcal_reduce, torch, triton; \
flavour = 'cuda' if torch.version.cuda else 'cpu'; \
assert flavour == '${TORCH_FLAVOUR}', f'torch {torch.__version__} is a {flavour} build, TORCH_FLAVOUR=${TORCH_FLAVOUR}'"
# The built-in tiny series (the demo's checkpoints), trained once here on one thread with its
# checksums recorded, read-only in the image: evaluator pods never build it (docs/tiny-series.md).
# Whatever training left in /tmp (the working directory) is not part of the image.
RUN /opt/venv/bin/python -m benchcal_eval.tiny_series --bake \
 && find /tmp -mindepth 1 -delete
# No user weights in the image (only the tiny demo series, under /opt/venv/share/benchcal):
# downloads (hub sources only) and compiled kernels go to /tmp, as do the model-file hash cache
# and models copied from object storage (XDG_CACHE_HOME/benchcal/). GPUs are the device plugin's
# to expose (NVIDIA_VISIBLE_DEVICES is set per allocation), never all of a node's.
ENV HF_HOME=/tmp/hf \
    TRITON_CACHE_DIR=/tmp/triton \
    XDG_CACHE_HOME=/tmp/cache \
    HF_HUB_DISABLE_TELEMETRY=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# No NVIDIA_VISIBLE_DEVICES: the device plugin sets it to the GPUs a pod was allocated; "all" in the
# image would expose every GPU of the node to pods that request none (issue 11 item 15).
USER 65532:65532
CMD ["benchcal", "evaluate", "--help"]

# ---------------------------------------------------------------------------------------------
# operator: `benchcal operator` (kopf) and nothing of torch. Last stage, so a plain `docker build .`
# builds it.
FROM runtime AS operator
COPY --from=wheel /dist/ /dist/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: "$(ls /dist/benchcal-*.whl)[operator]" \
 && /opt/venv/bin/python -c "import benchcal_operator, kopf" \
 && ! /opt/venv/bin/python -c "import torch" 2>/dev/null
USER 65532:65532
EXPOSE 8080 8081
CMD ["benchcal", "operator", "--standalone", "--liveness", "http://0.0.0.0:8081/healthz"]
