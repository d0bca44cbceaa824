"""e2e fixtures: each test gets a fresh ``E2E`` world (see harness.py); modules mark themselves ``e2e``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import E2E
from tests.kube.fixtures import kubectl_available


@pytest.fixture
def e2e(tmp_path: Path) -> Iterator[E2E]:
    if not kubectl_available():
        pytest.skip("kubectl is not on PATH")
    world = E2E(tmp_path)
    try:
        yield world
    finally:
        world.close()
