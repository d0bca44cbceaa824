"""The evaluator image as pods run it (uid 65532, read-only root, capabilities dropped,
RuntimeDefault seccomp), through the local node's podman runtime."""

from __future__ import annotations

import pytest

from tests.images.build import image_name
from tests.images.require import require
from tests.kube.fixtures import LocalCluster, wait_for

pytestmark = [pytest.mark.podman]

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
CANONICAL = """
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import get_task
from benchcal_eval.requests import CodeSpec
from benchcal_eval.sandbox import check_completion
for name in ("human_eval", "human_eval_js", "human_eval_cpp"):
    for r in load_examples(get_task(name))[:2]:
        spec = CodeSpec(r["task_id"], r["prompt"], r["entry_point"], r["test"], tuple(r["test_inputs"]),
                        tuple(r["test_outputs"]), r["language"])
        check = check_completion(spec, r["canonical_solution"])
        print(name, check.passed, check.reason[:120])
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    require("evaluator")
    with LocalCluster(tmp_path_factory.mktemp("evaluator-image"), runtime="podman", max_parallel_pods=3) as c:
        yield c


def _pod(cluster: LocalCluster, name: str, args: list[str]) -> None:
    container = {
        "name": "main",
        "image": image_name("evaluator"),
        "args": args,
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec = {
        "restartPolicy": "Never",
        "securityContext": POD_SECURITY,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    api = cluster.server.api
    api.create(api.type("", "v1", "pods"), "default", {"metadata": {"name": name}, "spec": spec})


def _run(cluster: LocalCluster, name: str, args: list[str], timeout: float = 600) -> str:
    _pod(cluster, name, args)
    api = cluster.server.api

    def done() -> dict | None:
        pod = api.get(api.type("", "v1", "pods"), "default", name)
        return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    pod = wait_for(done, timeout, interval=0.5, what=f"pod {name}")
    log = (cluster.work_dir / "logs" / "default" / name / "main.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    return log


def test_the_baked_tiny_series_loads_without_any_variable(cluster: LocalCluster) -> None:
    code = (
        "import os; from benchcal_eval.tiny_series import ensure_model; "
        "print(ensure_model('tiny-series/s5')); print(os.getcwd()); "
        "print(os.environ.get('NVIDIA_VISIBLE_DEVICES', 'unset'), os.environ.get('BENCHCAL_CACHE', 'unset'))"
    )
    lines = _run(cluster, "series", ["python", "-c", code]).split()
    assert lines[0].startswith("/opt/venv/share/benchcal/tiny-series/") and lines[0].endswith("/s5")
    assert lines[1:] == ["/tmp", "unset", "unset"]


def test_code_samples_of_every_language_run_in_the_image(cluster: LocalCluster) -> None:
    lines = _run(cluster, "canonical", ["python", "-c", CANONICAL]).splitlines()
    results = [ln.split(" ", 2) for ln in lines if ln.startswith("human_eval")]
    assert [r[0] for r in results] == ["human_eval"] * 2 + ["human_eval_js"] * 2 + ["human_eval_cpp"] * 2
    assert all(r[1] == "True" for r in results), lines


# issue 12 §1 (merged): a per-thread RLIMIT_NPROC counted every thread of uid 65532 on the node,
# so a busy neighbour pod made node and g++ fail to start; the sandbox's bound no longer depends on it
def test_code_samples_survive_a_busy_neighbour_running_as_the_same_uid(cluster: LocalCluster) -> None:
    busy = "import threading, time; [threading.Thread(target=time.sleep, args=(900,), daemon=True).start() for _ in range(80)]; print('ready', flush=True); time.sleep(900)"
    _pod(cluster, "neighbour", ["python", "-c", busy])
    log = cluster.work_dir / "logs" / "default" / "neighbour" / "main.log"
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 120, what="the neighbour's 80 threads")
    try:
        lines = _run(cluster, "crowded", ["python", "-c", CANONICAL]).splitlines()
    finally:
        api = cluster.server.api
        api.delete(api.type("", "v1", "pods"), "default", "neighbour")
    results = [ln.split(" ", 2) for ln in lines if ln.startswith("human_eval")]
    assert len(results) == 6 and all(r[1] == "True" for r in results), lines
