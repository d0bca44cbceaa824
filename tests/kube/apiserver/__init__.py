"""A local Kubernetes API server for tests: see docs/testing.md for what it does and does not do."""

from tests.kube.apiserver.server import LocalApiServer

__all__ = ["LocalApiServer"]
