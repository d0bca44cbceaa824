"""The local kubelet runs init containers and native sidecars as a real one does (Kubernetes 1.29+).

Plain init containers run one at a time, in order, before anything else; a sidecar (an init
container with ``restartPolicy: Always``) starts in its place in that order and runs beside the
main containers; once every main container has exited it gets SIGTERM, then SIGKILL after the
grace period; the pod's phase comes from the main containers only. Each test runs with the
process runtime and, marked ``podman``, with real containers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.images.build import BASE_IMAGE
from tests.images.require import require
from tests.kube.fixtures import LocalCluster, wait_for

SHARED = {"name": "shared", "mountPath": "/shared"}


@pytest.fixture(params=["process", pytest.param("podman", marks=pytest.mark.podman)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "podman":
        require(base=True)
    with LocalCluster(tmp_path, runtime=request.param) as c:
        yield c


def _sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": BASE_IMAGE,
        "command": ["sh", "-c", script],
        "volumeMounts": [SHARED],
        **extra,
    }


def _log_line(what: str) -> str:
    return f"echo {what} >> /shared/order"


def _create(cluster: LocalCluster, name: str, inits: list[dict], mains: list[dict], **spec: Any) -> None:
    pod = {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": inits,
            "containers": mains,
            **spec,
        },
    }
    api = cluster.server.api
    api.create(api.type("", "v1", "pods"), "default", pod)


def _pod(cluster: LocalCluster, name: str) -> dict:
    api = cluster.server.api
    return api.get(api.type("", "v1", "pods"), "default", name)


def _finished(cluster: LocalCluster, name: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        pod = _pod(cluster, name)
        return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, interval=0.2, what=f"pod {name} to finish")


def _order(cluster: LocalCluster, pod: dict) -> list[str]:
    running = cluster.runner.history[pod["metadata"]["uid"]]
    return (running.volumes["shared"].path / "order").read_text().split()


def _state(pod: dict, key: str, name: str) -> dict:
    return next(c for c in pod["status"][key] if c["name"] == name)["state"]


# a sidecar that records its start and its SIGTERM, then exits 7 (its exit code must not matter)
SIDECAR = _sh(
    "side",
    f"trap '{_log_line('side-term')}; exit 7' TERM; {_log_line('side-start')}; while :; do sleep 0.1; done",
    restartPolicy="Always",
)


def test_init_containers_in_order_then_sidecar_beside_main_and_stopped_after_it(
    cluster: LocalCluster,
) -> None:
    _create(
        cluster,
        "ordered",
        [
            _sh("first", f"sleep 1.5; {_log_line('first')}"),
            SIDECAR,
            _sh("second", f"grep -q side-start /shared/order && {_log_line('second')}"),
        ],
        [_sh("main", f"grep -q second /shared/order && {_log_line('main')}; sleep 0.5")],
    )
    # while the first init container runs: Pending, not Initialized, nothing else started
    pending = wait_for(
        lambda: (p := _pod(cluster, "ordered")).get("status", {}).get("initContainerStatuses") and p, 30
    )
    assert pending["status"]["phase"] == "Pending"
    assert {c["type"]: c["status"] for c in pending["status"]["conditions"]}["Initialized"] == "False"
    assert "running" in _state(pending, "initContainerStatuses", "first")
    assert _state(pending, "initContainerStatuses", "side") == {"waiting": {"reason": "PodInitializing"}}
    assert _state(pending, "containerStatuses", "main") == {"waiting": {"reason": "PodInitializing"}}

    pod = _finished(cluster, "ordered")
    assert pod["status"]["phase"] == "Succeeded"  # from the main container; the sidecar exited 7
    assert _order(cluster, pod) == ["first", "side-start", "second", "main", "side-term"]
    side = _state(pod, "initContainerStatuses", "side")["terminated"]
    assert side["exitCode"] == 7
    assert _state(pod, "containerStatuses", "main")["terminated"]["exitCode"] == 0


def test_a_sidecar_ignoring_sigterm_is_killed_after_the_grace_period(cluster: LocalCluster) -> None:
    stubborn = _sh("side", "trap '' TERM; while :; do sleep 0.1; done", restartPolicy="Always")
    _create(cluster, "stubborn", [stubborn], [_sh("main", "exit 0")], terminationGracePeriodSeconds=2)
    pod = wait_for(lambda: _pod(cluster, "stubborn")["status"].get("phase") == "Running", 30)
    t0 = time.monotonic()
    pod = _finished(cluster, "stubborn")
    assert time.monotonic() - t0 >= 1.5  # SIGTERM did nothing; SIGKILL came with the grace period's end
    assert pod["status"]["phase"] == "Succeeded"
    assert _state(pod, "initContainerStatuses", "side")["terminated"]["exitCode"] == 137


def test_a_failed_init_container_fails_the_pod_under_restart_policy_never(cluster: LocalCluster) -> None:
    _create(cluster, "broken", [SIDECAR, _sh("bad", "echo no >&2; exit 3")], [_sh("main", _log_line("main"))])
    pod = _finished(cluster, "broken")
    assert pod["status"]["phase"] == "Failed"
    assert _state(pod, "initContainerStatuses", "bad")["terminated"]["exitCode"] == 3
    assert _state(pod, "containerStatuses", "main") == {"waiting": {"reason": "PodInitializing"}}
    assert _order(cluster, pod) == ["side-start", "side-term"]  # the main container never ran


def test_a_failed_init_container_is_restarted_under_on_failure(cluster: LocalCluster) -> None:
    flaky = _sh("flaky", f"{_log_line('try')}; test $(grep -c try /shared/order) -ge 2")
    _create(cluster, "retried", [flaky], [_sh("main", _log_line("main"))], restartPolicy="OnFailure")
    pod = _finished(cluster, "retried")
    assert pod["status"]["phase"] == "Succeeded"
    assert _order(cluster, pod) == ["try", "try", "main"]
    flaky_status = next(c for c in pod["status"]["initContainerStatuses"] if c["name"] == "flaky")
    assert flaky_status["restartCount"] == 1


def test_a_sidecar_that_exits_early_is_restarted(cluster: LocalCluster) -> None:
    short = _sh("side", _log_line("side"), restartPolicy="Always")
    wait_two = "until test $(grep -c side /shared/order) -ge 2; do sleep 0.1; done"
    _create(cluster, "restarts", [short], [_sh("main", wait_two)])
    pod = _finished(cluster, "restarts")
    assert pod["status"]["phase"] == "Succeeded"
    side = next(c for c in pod["status"]["initContainerStatuses"] if c["name"] == "side")
    assert side["restartCount"] >= 1


def test_a_deleted_pod_stops_main_containers_before_its_sidecars(cluster: LocalCluster) -> None:
    main = _sh("main", f"trap '{_log_line('main-term')}; exit 0' TERM; while :; do sleep 0.1; done")
    _create(cluster, "deleted", [SIDECAR], [main], terminationGracePeriodSeconds=10)
    pod = wait_for(lambda: (p := _pod(cluster, "deleted"))["status"].get("phase") == "Running" and p, 30)
    running = cluster.runner.history[pod["metadata"]["uid"]]
    wait_for(lambda: (running.volumes["shared"].path / "order").exists(), 10, what="the sidecar started")
    api = cluster.server.api
    api.delete(api.type("", "v1", "pods"), "default", "deleted")
    wait_for(lambda: cluster.runner.kubelet.done(running), 20, what="every container to exit")
    order = (running.volumes["shared"].path / "order").read_text().split()
    assert order == ["side-start", "main-term", "side-term"]


def test_restart_policy_on_a_container_is_validated(cluster: LocalCluster) -> None:
    from tests.kube.apiserver.errors import ApiError

    with pytest.raises(ApiError) as bad_main:
        _create(cluster, "v1", [], [_sh("main", "true", restartPolicy="Always")])
    assert "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers" in str(
        bad_main.value.message
    )
    with pytest.raises(ApiError) as bad_init:
        _create(cluster, "v2", [_sh("init", "true", restartPolicy="Never")], [_sh("main", "true")])
    assert 'spec.initContainers[0].restartPolicy: Unsupported value: "Never"' in bad_init.value.message


def test_a_projected_token_is_visible_only_in_the_sidecar_that_mounts_it(cluster: LocalCluster) -> None:
    """The evaluator pods' layout: no automounted token, a projected one mounted by the sidecar only."""
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    token = {"name": "api", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    # the path rule rewrites the sidecar's own mount path; KUBECONFIG is what processes get instead
    sees = f'test -s {sa}/token && {_log_line("side-token")}; test -n "$KUBECONFIG$KUBERNETES_SERVICE_HOST" && {_log_line("side-api")}'
    side = _sh("side", f"{sees}; trap 'exit 0' TERM; while :; do sleep 0.1; done", restartPolicy="Always")
    side["volumeMounts"] = [SHARED, {"name": "api", "mountPath": sa, "readOnly": True}]
    blind = f'test -e {sa}/token || {_log_line("main-no-token")}; test -z "$KUBECONFIG" && {_log_line("main-no-kubeconfig")}'
    volumes = [{"name": "shared", "emptyDir": {}}, token]
    _create(cluster, "token", [side], [_sh("main", f"sleep 0.5; {blind}")], volumes=volumes)
    pod = cluster.server.api.get(cluster.server.api.type("", "v1", "pods"), "default", "token")
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["shared", "api"]  # nothing automounted
    pod = _finished(cluster, "token")
    assert pod["status"]["phase"] == "Succeeded"
    assert sorted(_order(cluster, pod)) == ["main-no-kubeconfig", "main-no-token", "side-api", "side-token"]
