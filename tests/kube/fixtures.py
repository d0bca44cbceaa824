"""Pytest fixtures and ``LocalCluster``: API server + job runner + kubeconfig + kubectl helper.

``E2E_KUBECONFIG=path`` switches ``cluster`` to an existing cluster (kind, k3d, a GPU cluster):
no local server or runner is started and fault injection that needs the runner is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube.apiserver import LocalApiServer
from tests.kube.jobrunner import CommandOverride, JobRunner
from tests.kube.satoken import PodCredentials


class LocalCluster:
    """A local server (optionally with a job runner) and a kubeconfig pointing at it."""

    def __init__(
        self,
        work_dir: Path,
        *,
        runner: bool = True,
        max_parallel_pods: int = 2,
        command_override: CommandOverride | None = None,
        extra_env: dict[str, str] | None = None,
        bookmark_interval: float = 5.0,
        pvc_dirs: dict[str, Path] | None = None,
        runtime: str = "process",
    ):
        self.work_dir = Path(work_dir)
        self.server = LocalApiServer(log_dir=self.work_dir / "logs", bookmark_interval=bookmark_interval)
        self.kubeconfig = self.server.admin_kubeconfig(self.work_dir / "kubeconfig")  # system:masters
        self.runner: JobRunner | None = None
        if runner:
            self.runner = JobRunner(
                self.server.api,
                work_dir=self.work_dir / "node",
                log_dir=self.work_dir / "logs",
                credentials=PodCredentials.of(self.server),
                max_parallel_pods=max_parallel_pods,
                command_override=command_override,
                extra_env=extra_env,
                pvc_dirs=pvc_dirs,
                runtime=runtime,
            )

    def kubeconfig_for(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates as ``system:serviceaccount:NS:SA`` (the SA must exist)."""
        path = self.work_dir / "kubeconfigs" / f"{namespace}-{service_account}"
        return self.server.kubeconfig_for(path, namespace, service_account)

    def start(self) -> LocalCluster:
        self.server.start()
        if self.runner:
            self.runner.start()
        return self

    def stop(self) -> None:
        if self.runner:
            self.runner.stop()
        self.server.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Kubectl:
    """Run the real kubectl against a kubeconfig; ``json()`` parses ``-o json`` output."""

    def __init__(self, kubeconfig: Path, namespace: str = "default"):
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.binary = shutil.which("kubectl") or "kubectl"

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    check: Callable[[], None] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy. ``check`` runs before every poll and
    its exceptions end the wait at once (a process the condition depends on has died), where the
    predicate's own errors are retried."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the API may be briefly unavailable (restarts): keep polling
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


def kubectl_available() -> bool:
    return shutil.which("kubectl") is not None


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path) as cluster:
        yield cluster


@pytest.fixture
def kube_server(tmp_path: Path) -> Iterator[LocalApiServer]:
    """Only the API server (no job runner): for conformance tests of the server itself."""
    with LocalApiServer(log_dir=tmp_path / "logs", bookmark_interval=0.5) as server:
        yield server


@pytest.fixture
def kubectl(kube_server: LocalApiServer, tmp_path: Path) -> Kubectl:
    if not kubectl_available():
        pytest.skip("kubectl is not on PATH")
    return Kubectl(kube_server.admin_kubeconfig(tmp_path / "kubeconfig"))


def external_kubeconfig() -> Path | None:
    value = os.environ.get("E2E_KUBECONFIG")
    return Path(value) if value else None


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
