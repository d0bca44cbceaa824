"""The e2e harness: a cluster (local server + job runner, or E2E_KUBECONFIG), the operator as a
real process, kubectl, and waits.

Locally the world is as strict as a cluster (docs/testing.md): the test namespace
``benchcal-e2e`` enforces Pod Security ``restricted``; the chart's rendered objects (CRD,
ServiceAccounts, RBAC; tests/e2e/chart.py) are applied as on ``helm install``; the operator runs
the rendered Deployment's command (``benchcal operator --standalone``, cluster-wide) and env,
authenticated with its ServiceAccount's token; evaluator and reducer pods get the token of the
chart's Job ServiceAccount. kubectl (``e2e.kubectl``) is the admin.

Pods run as podman containers of the images ``make images`` builds (``runtime="podman"``: the
evaluator and reducer as uid 65532 on a read-only root, in-cluster credentials) or as local
processes (``runtime="process"``, fast). ``E2E_RUNTIME=podman|process`` overrides every test's
choice. The results claim exists as a PVC object (a pod naming a missing claim stays Pending).
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

from tests.e2e import chart
from tests.kube.fixtures import Kubectl, LocalCluster, external_kubeconfig, wait_for
from tests.kube.jobrunner import CommandOverride

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "calibrationruns.benchcal.dev.yaml"
EXAMPLE = REPO / "examples" / "calibrationrun-minimal.yaml"
MANIFESTS = Path(__file__).resolve().parent / "manifests"
RESULTS_CLAIM = "benchcal-results"
# the process on this machine differs from the Deployment's pod only here: no fixed metrics
# port (tests run side by side), a short resync so waits stay short
LOCAL_OPERATOR_ENV = {"BENCHCAL_METRICS_PORT": "0", "BENCHCAL_RESYNC_SECONDS": "5"}
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


TEST_NAMESPACE = "benchcal-e2e"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def kopf_command(namespace: str) -> list[str]:
    """The operator watching one namespace (E2E_START_OPERATOR against a real cluster)."""
    kopf = Path(sys.executable).parent / "kopf"
    return [str(kopf), "run", "--standalone", "--namespace", namespace, "-m", "benchcal_operator.handlers"]


class OperatorExited(AssertionError):
    """The operator process ended while the test still needed it."""


# Operators of the running test (one test at a time per process, xdist workers included): every
# wait checks them, so a crashed operator fails the test at once with its log.
_WATCHED: list[OperatorProcess] = []


def check_operators() -> None:
    for operator in list(_WATCHED):
        operator.check_alive()


class OperatorProcess:
    """The operator as a separate OS process, so tests can kill -9 and restart it."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, command: list[str], env: dict[str, str] | None = None
    ):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.command = command
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.wanted = False  # started and not stopped or killed by the test

    def check_alive(self) -> None:
        """Raise at once if the operator exited although the test did not stop it: every wait
        would otherwise run to its timeout (minutes) and end with an unrelated message."""
        if self.wanted and self.proc is not None and (rc := self.proc.poll()) is not None:
            self.wanted = False  # one report; the test's teardown still runs
            raise OperatorExited(
                f"the operator exited with status {rc} while the test waited on it"
                f"\n--- operator log (tail) ---\n{self.log()[-4000:]}"
            )

    def start(self) -> None:
        cmd = list(self.command)
        env = {
            **os.environ,
            "BENCHCAL_METRICS_PORT": "0",
            "BENCHCAL_RESYNC_SECONDS": "5",
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== operator start #{self.starts} =====\n")
            log.flush()
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )
        self.wanted = True
        if self not in _WATCHED:
            _WATCHED.append(self)

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        self.wanted = False
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.wanted = False
        if self in _WATCHED:
            _WATCHED.remove(self)
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
        chart_mode: str = "cluster",
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
            self.namespace = TEST_NAMESPACE
        else:
            kubeconfig = self.external
            self.namespace = f"benchcal-e2e-{uuid.uuid4().hex[:6]}"
        self.kubectl = Kubectl(kubeconfig, self.namespace)
        if self.external is not None:
            self._namespace(self.namespace)
            self.kubectl("apply", "-f", str(CRD_FILE))
            self._wait_crd()
            self.operator = OperatorProcess(
                kubeconfig, work_dir / "operator.log", kopf_command(self.namespace), operator_env
            )
            if os.environ.get("E2E_START_OPERATOR") == "1":
                self.operator.start()
            return
        # locally: install the chart as helm would, then run its operator as its ServiceAccount
        self.install = chart.install(self.namespace, chart_mode)
        self._namespace(chart.RELEASE_NAMESPACE)
        self._namespace(self.namespace)
        for crd in self.install.crd_files:
            self.kubectl("apply", "-f", str(crd))
        self._wait_crd()
        for ns, text in chart.manifests_by_namespace(self.install).items():
            Kubectl(kubeconfig, ns or self.namespace)("apply", "-f", "-", input=text)
        self.apply(RESULTS_PVC)  # on a real cluster the claim is the user's to create
        assert self.cluster is not None
        operator_kubeconfig = self.cluster.kubeconfig_for(*self.install.operator_account)
        command = [str(Path(sys.executable).parent / self.install.operator_args[0])]
        command += self.install.operator_args[1:]
        env = {**self.install.operator_env, **LOCAL_OPERATOR_ENV, **(operator_env or {})}
        self.operator = OperatorProcess(operator_kubeconfig, work_dir / "operator.log", command, env)
        self.operator.start()

    def _namespace(self, name: str) -> None:
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))

    def _wait_crd(self) -> None:
        self.kubectl(
            "wait", "--for=condition=Established", "crd/calibrationruns.benchcal.dev", "--timeout=30s"
        )

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
            return wait_for(
                reached,
                timeout,
                interval=1.0,
                what=f"CalibrationRun {name} phase in {phases}",
                check=check_operators,
            )
        except OperatorExited:
            raise
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

    def forbidden(self, user_prefix: str = "system:serviceaccount:") -> list[str]:
        """403 messages the local server sent to ServiceAccounts (the operator, the pods) so far."""
        assert self.cluster is not None
        return [m for u, m in self.cluster.server.denials if u.startswith(user_prefix)]

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
    return wait_for(predicate, timeout, interval=0.5, what=what, check=check_operators)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
