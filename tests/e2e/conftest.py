"""e2e fixtures: each test gets a fresh ``E2E`` world (see harness.py); modules mark themselves ``e2e``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import E2E
from tests.kube.fixtures import kubectl_available


@pytest.fixture(scope="session")
def tiny_series_built() -> None:
    """Build the tiny model series once, before any pod needs it (pods share the cache)."""
    if os.environ.get("E2E_KUBECONFIG"):
        return
    from benchcal_eval.tiny_series import DEFAULT, cache_root
    from tests.images.series import seed_from_image

    seed_from_image(cache_root(), DEFAULT.key())  # the image's build, when it is there
    code = "from benchcal_eval.tiny_series import ensure_model; ensure_model('tiny-series/s1')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=900)


@pytest.fixture
def e2e(tmp_path: Path) -> Iterator[E2E]:
    if not kubectl_available():
        pytest.skip("kubectl is not on PATH")
    world = E2E(tmp_path)
    try:
        yield world
    finally:
        world.close()
