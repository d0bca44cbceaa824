"""Shared test wiring: GPU tests skip without CUDA; paths to the shared gauntlet data; the SmolLM2 GGUF;
the built-in tiny series seeded once; how pytest-xdist splits the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("BENCHCAL_SHARED", REPO_ROOT.parent / "shared"))

# One cache for the built-in tiny series across the whole session (and the processes the
# end-to-end tests start), so it is trained once per test run, not once per test.
os.environ.setdefault("BENCHCAL_CACHE", str(REPO_ROOT / ".benchcal-cache"))


@pytest.fixture(scope="session")
def tiny_series_built() -> None:
    """The built-in tiny series in the session's cache before a test needs it: copied from the
    fresh evaluator image, which trained it at build time (checksums verified by ensure_model),
    else trained here once. Without it the first test to ask trains it (minutes on a loaded
    machine) while every other test that needs it waits on the build lock."""
    if os.environ.get("E2E_KUBECONFIG"):
        return
    from benchcal_eval.tiny_series import DEFAULT, cache_root
    from tests.images.series import seed_from_image

    seed_from_image(cache_root(), DEFAULT.key())  # the image's build, when it is there
    code = "from benchcal_eval.tiny_series import ensure_model; ensure_model('tiny-series/s1')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=900)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# Triton chooses interpreted vs compiled kernels when it is first imported, so the CPU-only
# kernel tests (tests/evaluator/kernels) need TRITON_INTERPRET=1 before any test imports it.
if "TRITON_INTERPRET" not in os.environ and not _cuda_available():
    os.environ["TRITON_INTERPRET"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: `make test` runs `-n 3 --dist loadscope`
        items.sort(key=start_rank)  # stable: collection order within a rank
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


# Parallel runs (pytest-xdist). The end-to-end tests mostly wait (on pods, kopf, podman): each is
# its own unit of work, and so is each local run of the real tiny series (test_local_run.py,
# 950 s in all, was the longest chain as one module); the slowest go first (as measured in the CI
# log's --durations), so they overlap with each other and with the CPU-bound rest instead of
# ending the run alone. Every other module is one unit, so its module-scoped fixtures (a local
# cluster, a trained model) are built once, on one worker. Every worker sorts alike (xdist checks
# that the collections agree) and the scheduler hands out units in that order
# (`--no-loadscope-reorder`).
ALONE = ("tests/e2e/", "tests/benchcal/app/test_local_run.py")
LONGEST_FIRST = (  # node id prefixes; seconds: the CI run of 2026-12-01 23:18 (three workers, loaded)
    "tests/e2e/test_growth.py",  # 696
    "tests/e2e/test_happy_path.py",  # 639
    "tests/benchcal/app/test_local_run.py::test_embedded_default_finds",  # 621
    "tests/benchcal/app/test_local_run.py::test_a_grown_run",  # 192
    "tests/e2e/test_faults.py",  # 139
    "tests/e2e/test_credentials.py",  # 108 + 67
    "tests/e2e/test_run_identity.py",  # 98
    *ALONE,
)


def work_unit(nodeid: str) -> str:
    """The scope a worker runs as one piece: the test itself under tests/e2e, else its module."""
    return nodeid if nodeid.startswith(ALONE) else nodeid.split("::", 1)[0]


def start_rank(item: pytest.Item) -> int:
    for i, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return i
    if "podman" in item.keywords or "slow" in item.keywords:
        return len(LONGEST_FIRST)
    return len(LONGEST_FIRST) + 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadscope``, with each e2e test a scope of its own (see above).

    Its own scheduler, not ``xdist_group`` marks: with pytest 9.2, ``--dist loadgroup`` silently
    stops grouping (pytest-xdist issue #1386: it rewrites a node id field pytest no longer reads).
    """
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndE2ETests(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModulesAndE2ETests(config, log)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED_DIR


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M GGUF (tests/models.py): skips without it, fails under CI."""
    from tests.models import smollm2_gguf as locate

    return locate()
