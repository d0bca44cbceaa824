"""Shared test wiring: GPU tests skip without CUDA; paths to the shared gauntlet data; the SmolLM2 GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("BENCHCAL_SHARED", REPO_ROOT.parent / "shared"))

# One cache for the built-in tiny series across the whole session (and the processes the
# end-to-end tests start), so it is trained once per test run, not once per test.
os.environ.setdefault("BENCHCAL_CACHE", str(REPO_ROOT / ".benchcal-cache"))


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
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


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
