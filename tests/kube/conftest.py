"""Fixtures for the local API server's conformance tests (see tests/kube/fixtures.py).

Everything under tests/kube is marked ``kube`` (the local cluster itself), so
``make test-fast`` (``-m "not slow and not e2e and not kube"``) can leave it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube.fixtures import kube_server, kubectl, local_cluster

__all__ = ["kube_server", "kubectl", "local_cluster"]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a conftest hook sees the whole session's items: mark only the ones collected from here
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.kube)
