"""The e2e harness: a cluster (local server + job runner, or E2E_KUBECONFIG), the operator as a
real process (``kopf run --standalone -m benchcal_operator.handlers``), kubectl, and waits.

Pods run as podman containers of the images ``make images`` builds (``runtime="podman"``: the
evaluator and reducer as uid 65532 on a read-only root) or as local processes
(``runtime="process"``, fast). ``E2E_RUNTIME=podman|process`` overrides every test's choice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.kube.fixtures import Kubectl, LocalCluster, external_kubeconfig, wait_for
from tests.kube.jobrunner import CommandOverride

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "calibrationruns.benchcal.dev.yaml"
EXAMPLE = REPO / "examples" / "calibrationrun-minimal.yaml"
MANIFESTS = Path(__file__).resolve().parent / "manifests"
RESULTS_CLAIM = "benchcal-results"
TERMINAL = ("Succeeded", "Failed", "Invalid")
IMAGES = {"evaluator": "localhost/benchcal-evaluator:dev", "reducer": "localhost/benchcal-reducer:dev"}
RESULTS_PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": RESULTS_CLAIM},
    "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
}


def runtime_for(default: str) -> str:
    return os.environ.get("E2E_RUNTIME") or default


class OperatorProcess:
    """The operator as a separate OS process, so tests can kill -9 and restart it."""

    def __init__(self, kubeconfig: Path, log_path: Path, namespace: str, env: dict[str, str] | None = None):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.namespace = namespace
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        kopf = Path(sys.executable).parent / "kopf"
        cmd = [
            str(kopf),
            "run",
            "--standalone",
            "--namespace",
            self.namespace,
            "-m",
            "benchcal_operator.handlers",
        ]
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BENCHCAL_METRICS_PORT": "0",
            "BENCHCAL_RESYNC_SECONDS": "5",
            **self.env,
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== operator start #{self.starts} =====\n")
            log.flush()
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def peak_rss_kib(self) -> int | None:
        if not self.proc or self.proc.poll() is not None:
            return None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the operator process has used so far."""
        if not self.proc or self.proc.poll() is not None:
            return None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class E2E:
    """One test's world: namespace, kubectl, operator, and (locally) the cluster and runner."""

    def __init__(
        self,
        work_dir: Path,
        *,
        command_override: CommandOverride | None = None,
        max_parallel_pods: int = 2,
        operator_env: dict[str, str] | None = None,
        runtime: str = "process",
    ):
        self.work_dir = work_dir
        self.runtime = runtime_for(runtime)
        operator_env = dict(operator_env or {})
        self.results_dir = work_dir / "results-pvc"
        self.external = external_kubeconfig()
        self.cluster: LocalCluster | None = None
        if self.external is None and self.runtime == "podman":
            from tests.images.require import require

            require(*IMAGES)  # fails (skips only without podman, off CI) before anything starts
            operator_env.setdefault("BENCHCAL_EVALUATOR_IMAGE", IMAGES["evaluator"])
            operator_env.setdefault("BENCHCAL_REDUCER_IMAGE", IMAGES["reducer"])
        if self.external is None:
            self.cluster = LocalCluster(
                work_dir,
                max_parallel_pods=max_parallel_pods,
                command_override=command_override,
                pvc_dirs={RESULTS_CLAIM: self.results_dir},
                runtime=self.runtime,
            ).start()
            self.cluster.runner.failure_backoff = 0.5
            kubeconfig = self.cluster.kubeconfig
            self.namespace = "default"
        else:
            kubeconfig = self.external
            self.namespace = f"benchcal-e2e-{uuid.uuid4().hex[:6]}"
        self.kubectl = Kubectl(kubeconfig, self.namespace)
        if self.external is not None:
            self.kubectl("create", "namespace", self.namespace)
        if self.external is None:  # a real cluster: the namespace's claim is the user's to create
            self.apply(RESULTS_PVC)
        self.kubectl("apply", "-f", str(CRD_FILE))
        self.kubectl(
            "wait", "--for=condition=Established", "crd/calibrationruns.benchcal.dev", "--timeout=30s"
        )
        self.operator = OperatorProcess(kubeconfig, work_dir / "operator.log", self.namespace, operator_env)
        if self.external is None or os.environ.get("E2E_START_OPERATOR") == "1":
            self.operator.start()

    @property
    def local(self) -> bool:
        return self.cluster is not None

    def close(self) -> None:
        self.operator.stop()
        if self.external is not None:
            self.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
        if self.cluster is not None:
            self.cluster.stop()

    # ------------------------------------------------------------ helpers
    def apply(self, doc: dict[str, Any] | str) -> None:
        self.kubectl("apply", "-f", "-", input=doc if isinstance(doc, str) else yaml.safe_dump(doc))

    def run(self, name: str) -> dict[str, Any]:
        return self.kubectl.json("get", "calibrationrun", name)

    def wait_phase(
        self, name: str, phases: tuple[str, ...] = TERMINAL, timeout: float = 600
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.run(name)
            return obj if (obj.get("status") or {}).get("phase") in phases else None

        try:
            return wait_for(reached, timeout, interval=1.0, what=f"CalibrationRun {name} phase in {phases}")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- status ---\n{yaml.safe_dump(self.run(name).get('status'))}"
                f"\n--- operator log (tail) ---\n{self.operator.log()[-4000:]}"
            ) from None

    def jobs(self, run: str) -> list[dict[str, Any]]:
        return self.kubectl.json("get", "jobs", "-l", f"benchcal.dev/run={run}")["items"]

    def host_path(self, pod_uid: str, path: str) -> Path | None:
        assert self.cluster is not None and self.cluster.runner is not None
        return self.cluster.runner.host_path(pod_uid, path)

    def job_creations(self) -> dict[str, int]:
        """Job name -> how many times a Job of that name was created (local only)."""
        assert self.cluster is not None
        return {
            key[3]: n
            for key, n in self.cluster.server.api.create_counts.items()
            if key[:2] == ("batch", "jobs") and key[2] == self.namespace
        }


def load_manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name).read_text())


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    return wait_for(predicate, timeout, interval=0.5, what=what)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
