"""Fixtures for the local API server's conformance tests (see tests/kube/fixtures.py)."""

from tests.kube.fixtures import kube_server, kubectl, local_cluster

__all__ = ["kube_server", "kubectl", "local_cluster"]
