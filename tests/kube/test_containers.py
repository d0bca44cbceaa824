"""Conformance of the local node's podman runtime: pods run as real containers, and what a real
kubelet refuses or enforces, it refuses or enforces here too.

Images: the base stand-in (``localhost/benchcal-python-base:bookworm``, user root) and the
reducer image (user 65532, ENTRYPOINT tini), both built by ``make images``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.images.build import BASE_IMAGE, image_name
from tests.images.require import require
from tests.kube.fixtures import LocalCluster, wait_for

pytestmark = [pytest.mark.podman]

USER = 65532
NON_ROOT = {"runAsNonRoot": True, "runAsUser": USER, "runAsGroup": USER}
HARDENED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    require(base=True)
    work = tmp_path_factory.mktemp("containers")
    with LocalCluster(work, runtime="podman", pvc_dirs={"data": work / "pvc-data"}, max_parallel_pods=4) as c:
        c.runner.retry_interval = 0.5
        yield c


def _reducer() -> str:
    require("reducer")
    return image_name("reducer")


def _api(cluster: LocalCluster, plural: str):
    return cluster.server.api.type("", "v1", plural)


def _create_pod(
    cluster: LocalCluster, name: str, script: str | None = None, *, container: dict | None = None, **spec: Any
) -> None:
    main = {"name": "main", "image": BASE_IMAGE, **(container or {})}
    if script is not None:
        main["command"] = ["sh", "-c", script]
    pod = {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [main], **spec}}
    cluster.server.api.create(_api(cluster, "pods"), "default", pod)


def _pod(cluster: LocalCluster, name: str) -> dict:
    return cluster.server.api.get(_api(cluster, "pods"), "default", name)


def _finished(cluster: LocalCluster, name: str, timeout: float = 120) -> dict:
    def done() -> dict | None:
        pod = _pod(cluster, name)
        return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, interval=0.3, what=f"pod {name} to finish")


def _waiting(cluster: LocalCluster, name: str, reason: str, timeout: float = 60) -> dict:
    def waiting() -> dict | None:
        pod = _pod(cluster, name)
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            w = cs.get("state", {}).get("waiting")
            if w and w["reason"] == reason:
                return pod
        return None

    return wait_for(waiting, timeout, interval=0.3, what=f"pod {name} waiting with {reason}")


def _terminated(pod: dict, container: str = "main") -> dict:
    cs = next(c for c in pod["status"]["containerStatuses"] if c["name"] == container)
    return cs["state"]["terminated"]


def _log(cluster: LocalCluster, name: str, container: str = "main") -> str:
    return (cluster.work_dir / "logs" / "default" / name / f"{container}.log").read_text()


def _events(cluster: LocalCluster, name: str) -> list[dict]:
    events, _ = cluster.server.api.list(_api(cluster, "events"), "default")
    return [e for e in events if e["involvedObject"]["name"] == name]


def _claim(cluster: LocalCluster, name: str) -> None:
    claim = {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.server.api.create(_api(cluster, "persistentvolumeclaims"), "default", claim)


def test_read_only_root_is_read_only_and_only_volumes_are_writable(cluster: LocalCluster) -> None:
    script = "touch /x; echo root=$?; touch /tmp/x; echo tmp=$?; touch /scratch/x; echo scratch=$?; id -u; id -G; pwd"
    _create_pod(
        cluster, "ro-root", script,
        container={
            "securityContext": HARDENED,
            "volumeMounts": [{"name": "s", "mountPath": "/scratch"}],
            "workingDir": "/scratch",
        },
        securityContext={**NON_ROOT, "supplementalGroups": [4242]},
        volumes=[{"name": "s", "emptyDir": {}}],
    )  # fmt: skip
    pod = _finished(cluster, "ro-root")
    lines = _log(cluster, "ro-root").splitlines()
    assert "Read-only file system" in "\n".join(lines)
    assert [ln for ln in lines if "=" in ln] == ["root=1", "tmp=1", "scratch=0"]  # /tmp too: no podman tmpfs
    assert lines[-3:] == [str(USER), f"{USER} 4242", "/scratch"]
    assert pod["status"]["phase"] == "Succeeded"
    # the same write as root without readOnlyRootFilesystem succeeds: the check above can fail
    _create_pod(cluster, "rw-root", "touch /x && echo wrote")
    assert _finished(cluster, "rw-root")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "rw-root").strip() == "wrote"


def test_a_fresh_claim_is_root_owned_and_needs_fs_group(cluster: LocalCluster) -> None:
    _claim(cluster, "data")
    mount = {"volumeMounts": [{"name": "d", "mountPath": "/data"}], "securityContext": HARDENED}
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
    _create_pod(
        cluster, "no-fsgroup", "touch /data/x", container=mount, securityContext=NON_ROOT, volumes=volumes
    )
    pod = _finished(cluster, "no-fsgroup")
    assert pod["status"]["phase"] == "Failed" and _terminated(pod)["exitCode"] == 1
    assert "Permission denied" in _log(cluster, "no-fsgroup")
    host = cluster.work_dir / "pvc-data"
    assert (host.stat().st_uid, host.stat().st_gid, oct(host.stat().st_mode & 0o7777)) == (0, 0, "0o755")

    with_group = {**NON_ROOT, "fsGroup": USER, "fsGroupChangePolicy": "OnRootMismatch"}
    _create_pod(
        cluster,
        "fsgroup",
        "mkdir -p /data/r && touch /data/r/x && ls -ln /data/r",
        container=mount,
        securityContext=with_group,
        volumes=volumes,
    )
    pod = _finished(cluster, "fsgroup")
    assert pod["status"]["phase"] == "Succeeded", _log(cluster, "fsgroup")
    assert host.stat().st_gid == USER and host.stat().st_mode & 0o2070 == 0o2070  # setgid, g+rwx
    assert (host / "r" / "x").stat().st_gid == USER  # new files inherit the group (setgid)


def test_run_as_non_root_refuses_an_image_whose_user_is_root(cluster: LocalCluster) -> None:
    _create_pod(cluster, "root-image", "echo should not run", securityContext={"runAsNonRoot": True})
    pod = _waiting(cluster, "root-image", "CreateContainerConfigError")
    uid = pod["metadata"]["uid"]
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == (
        f'container has runAsNonRoot and image will run as root (pod: "root-image_default({uid})", container: main)'
    )
    assert pod["status"]["phase"] == "Pending"
    assert any(
        e["reason"] == "Failed" and "runAsNonRoot" in e["message"] for e in _events(cluster, "root-image")
    )
    _create_pod(cluster, "root-uid", "true", securityContext={"runAsNonRoot": True, "runAsUser": 0})
    pod = _waiting(cluster, "root-uid", "CreateContainerConfigError")
    assert (
        "container's runAsUser breaks non-root policy"
        in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    )
    # the image's own numeric USER (65532) passes the check
    _create_pod(
        cluster,
        "image-user",
        container={"image": _reducer(), "args": ["id", "-u"]},
        securityContext={"runAsNonRoot": True},
    )
    assert _finished(cluster, "image-user")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "image-user").strip() == str(USER)


def test_memory_limit_is_enforced_and_reported_as_oom_killed(cluster: LocalCluster) -> None:
    grab = "x = bytearray(256 * 1024 * 1024); print('survived')"
    limits = {"resources": {"limits": {"memory": "64Mi"}}}
    _create_pod(cluster, "oom", container={"command": ["python3", "-c", grab], **limits})
    pod = _finished(cluster, "oom")
    term = _terminated(pod)
    assert (pod["status"]["phase"], term["exitCode"], term["reason"]) == ("Failed", 137, "OOMKilled")
    assert "survived" not in _log(cluster, "oom")
    _create_pod(
        cluster, "fits", container={"command": ["python3", "-c", grab.replace("256", "16")], **limits}
    )
    pod = _finished(cluster, "fits")
    assert pod["status"]["phase"] == "Succeeded" and _log(cluster, "fits").strip() == "survived"


def test_sigterm_then_sigkill_after_the_grace_period(cluster: LocalCluster) -> None:
    stubborn = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got SIGTERM, ignoring it', flush=True))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    _create_pod(
        cluster,
        "stubborn",
        container={"command": ["python3", "-c", stubborn]},
        terminationGracePeriodSeconds=4,
    )
    wait_for(lambda: "ready" in _log(cluster, "stubborn"), 60, what="stubborn started")
    uid = _pod(cluster, "stubborn")["metadata"]["uid"]
    start = time.monotonic()
    cluster.server.api.delete(_api(cluster, "pods"), "default", "stubborn")
    wait_for(lambda: _log(cluster, "stubborn").count("got SIGTERM") == 1, 10, what="SIGTERM delivered")
    wait_for(lambda: uid not in cluster.runner.running, 60, what="stubborn stopped")
    elapsed = time.monotonic() - start
    assert 4 <= elapsed < 20, elapsed
    assert cluster.runner.history[uid].containers[0].poll() == 137  # SIGKILL
    # behind tini (the images' ENTRYPOINT) a process without a handler dies of SIGTERM at once,
    # and tini exits 128+15 (as PID 1 itself it would ignore SIGTERM: only SIGKILL would stop it)
    sleeper = ["python", "-c", "import time; print('ready', flush=True); time.sleep(600)"]
    _create_pod(cluster, "polite", container={"image": _reducer(), "args": sleeper})
    wait_for(lambda: "ready" in _log(cluster, "polite"), 60, what="polite started")
    uid = _pod(cluster, "polite")["metadata"]["uid"]
    start = time.monotonic()
    cluster.server.api.delete(_api(cluster, "pods"), "default", "polite")
    wait_for(lambda: uid not in cluster.runner.running, 20, what="polite stopped")
    assert time.monotonic() - start < 10
    assert cluster.runner.history[uid].containers[0].poll() == 143


def test_termination_message_file_and_fallback_to_logs(cluster: LocalCluster) -> None:
    _create_pod(
        cluster, "message", "echo 'checkpoint s3 done' > /dev/termination-log; exit 0",
        container={"securityContext": HARDENED}, securityContext=NON_ROOT,
    )  # fmt: skip
    assert _terminated(_finished(cluster, "message"))["message"] == "checkpoint s3 done\n"
    _create_pod(
        cluster, "fallback", "for i in $(seq 1 100); do echo line $i; done; echo 'boom: bad model path' >&2; exit 2",
        container={"terminationMessagePolicy": "FallbackToLogsOnError"},
    )  # fmt: skip
    term = _terminated(_finished(cluster, "fallback"))
    assert term["exitCode"] == 2 and term["reason"] == "Error"
    lines = term["message"].splitlines()
    assert len(lines) == 80 and lines[-1] == "boom: bad model path" and lines[0] == "line 22"


def test_env_expansion_field_refs_and_no_host_environment(cluster: LocalCluster) -> None:
    api = cluster.server.api
    job = {
        "metadata": {"name": "envjob"},
        "spec": {
            "completions": 2, "parallelism": 2, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": BASE_IMAGE,
                "command": ["sh", "-c", "echo $(GREETING) ns=$NS pod=$POD index=$JOB_COMPLETION_INDEX cache=${BENCHCAL_CACHE:-unset} $LITERAL"],
                "env": [
                    {"name": "WHO", "value": "world"},
                    {"name": "LITERAL", "value": "$$(WHO)"},
                    {"name": "GREETING", "value": "hello-$(WHO)"},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
            }]}},
        },
    }  # fmt: skip
    api.create(api.type("batch", "v1", "jobs"), "default", job)

    def both_succeeded() -> list[dict] | None:
        pods, _ = api.list(_api(cluster, "pods"), "default", "batch.kubernetes.io/job-name=envjob")
        done = [p for p in pods if p["status"].get("phase") == "Succeeded"]
        return done if len(done) == 2 else None

    pods = wait_for(both_succeeded, 120, what="both indexes succeeded")
    lines = sorted(_log(cluster, p["metadata"]["name"]).strip() for p in pods)
    names = sorted(p["metadata"]["name"] for p in pods)
    assert lines == [
        f"hello-world ns=default pod={n} index={i} cache=unset $(WHO)" for i, n in enumerate(names)
    ]


def test_config_map_volume_is_read_only_and_a_missing_one_blocks_the_pod(cluster: LocalCluster) -> None:
    api = cluster.server.api
    api.create(
        _api(cluster, "configmaps"), "default", {"metadata": {"name": "settings"}, "data": {"mode": "strict"}}
    )
    _create_pod(
        cluster, "cm", "cat /etc/cfg/mode; echo; echo x > /etc/cfg/mode || echo refused",
        container={"volumeMounts": [{"name": "c", "mountPath": "/etc/cfg"}]},
        volumes=[{"name": "c", "configMap": {"name": "settings"}}],
    )  # fmt: skip
    assert _finished(cluster, "cm")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "cm").splitlines()[0] == "strict" and "refused" in _log(cluster, "cm")
    _create_pod(
        cluster, "cm-missing", "true",
        container={"volumeMounts": [{"name": "c", "mountPath": "/etc/cfg"}]},
        volumes=[{"name": "c", "configMap": {"name": "absent"}}],
    )  # fmt: skip
    pod = _waiting(cluster, "cm-missing", "ContainerCreating")
    assert pod["status"]["phase"] == "Pending"
    assert any(
        e["reason"] == "FailedMount" and 'configmap "absent" not found' in e["message"]
        for e in _events(cluster, "cm-missing")
    )
    api.create(_api(cluster, "configmaps"), "default", {"metadata": {"name": "absent"}, "data": {"k": "v"}})
    assert _finished(cluster, "cm-missing")["status"]["phase"] == "Succeeded"


def test_a_missing_claim_keeps_the_pod_pending_until_it_exists(cluster: LocalCluster) -> None:
    _create_pod(
        cluster, "needs-claim", "ls -a /r",
        container={"volumeMounts": [{"name": "r", "mountPath": "/r"}]},
        volumes=[{"name": "r", "persistentVolumeClaim": {"claimName": "later"}}],
    )  # fmt: skip
    pod = _waiting(cluster, "needs-claim", "ContainerCreating")
    assert (
        'persistentvolumeclaim "later" not found'
        in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    )
    _claim(cluster, "later")
    assert _finished(cluster, "needs-claim")["status"]["phase"] == "Succeeded"
    assert "lost+found" in _log(cluster, "needs-claim")  # a freshly formatted volume


def test_an_image_that_is_not_present_is_never_pulled(cluster: LocalCluster) -> None:
    _create_pod(
        cluster,
        "never",
        "true",
        container={"image": "localhost/no-such-image:dev", "imagePullPolicy": "Never"},
    )
    pod = _waiting(cluster, "never", "ErrImageNeverPull")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == (
        'Container image "localhost/no-such-image:dev" is not present with pull policy of Never'
    )
    _create_pod(cluster, "pull", "true", container={"image": "localhost/no-such-image:dev"})
    pod = _waiting(cluster, "pull", "ImagePullBackOff")
    assert (
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        == 'Back-off pulling image "localhost/no-such-image:dev"'
    )
    assert pod["status"]["phase"] == "Pending"


def test_entrypoint_and_cmd_follow_command_and_args(cluster: LocalCluster) -> None:
    image = _reducer()  # ENTRYPOINT ["/usr/bin/tini", "--"], CMD benchcal reduce --help
    pid1 = "tr '\\0' ' ' < /proc/1/cmdline"
    _create_pod(cluster, "args-only", container={"image": image, "args": ["sh", "-c", pid1]})
    _create_pod(cluster, "command", container={"image": image, "command": ["sh", "-c", pid1]})
    _create_pod(cluster, "defaults", container={"image": image})
    for name in ("args-only", "command", "defaults"):
        assert _finished(cluster, name)["status"]["phase"] == "Succeeded", _log(cluster, name)
    assert _log(cluster, "args-only").strip() == f"/usr/bin/tini -- sh -c {pid1}"  # tini stays PID 1
    assert _log(cluster, "command").strip() == f"sh -c {pid1}"  # command replaces the ENTRYPOINT
    assert "usage: benchcal reduce" in _log(cluster, "defaults")


def test_capabilities_and_no_new_privileges(cluster: LocalCluster) -> None:
    status = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"
    # containerd's RuntimeDefault: new namespaces need CAP_SYS_ADMIN (podman's own profile allows them)
    userns = 'unshare --user --map-root-user --net true 2>/dev/null; echo "Userns:\t$?"'
    _create_pod(
        cluster,
        "caps-hardened",
        f"{status}; {userns}",
        container={"securityContext": {**HARDENED, "seccompProfile": {"type": "RuntimeDefault"}}},
        securityContext=NON_ROOT,
    )
    _create_pod(cluster, "caps-default", status)
    _finished(cluster, "caps-hardened")
    _finished(cluster, "caps-default")
    hardened = dict(ln.split(":\t") for ln in _log(cluster, "caps-hardened").splitlines())
    default = dict(ln.split(":\t") for ln in _log(cluster, "caps-default").splitlines())
    assert hardened == {
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
        "Userns": "1",
    }
    # root with containerd's default set: CAP_NET_RAW (bit 13) and CAP_CHOWN (bit 0), no seccomp (Unconfined)
    assert int(default["CapEff"], 16) & (1 << 13 | 1) == (1 << 13 | 1)
    assert (default["NoNewPrivs"], default["Seccomp"]) == ("0", "0")


def test_empty_dir_over_its_size_limit_evicts_the_pod(cluster: LocalCluster) -> None:
    _create_pod(
        cluster, "hog", "head -c 8000000 /dev/zero > /scratch/blob; sleep 60",
        container={"volumeMounts": [{"name": "s", "mountPath": "/scratch"}]},
        volumes=[{"name": "s", "emptyDir": {"sizeLimit": "2Mi"}}],
    )  # fmt: skip
    pod = _finished(cluster, "hog", timeout=60)
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "Evicted")
    assert pod["status"]["message"] == 'Usage of EmptyDir volume "s" exceeds the limit "2Mi". '
    disruption = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert disruption["reason"] == "TerminationByKubelet"


def test_service_account_token_is_projected_only_where_mounted(cluster: LocalCluster) -> None:
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    _create_pod(cluster, "sa-default", f"cat {sa_dir}/namespace; echo; test -s {sa_dir}/token && echo token")
    assert _finished(cluster, "sa-default")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "sa-default").split() == ["default", "token"]
    _create_pod(
        cluster, "sa-off", f"ls {sa_dir} 2>/dev/null || echo none", automountServiceAccountToken=False
    )
    assert _finished(cluster, "sa-off")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "sa-off").strip().endswith("none")
    # a projected token volume mounted in a native sidecar only: the main container cannot read it
    token_volume = {
        "name": "api",
        "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]},
    }
    has_token = (
        "test -s /var/run/api/token && echo has-token; trap 'exit 0' TERM; while :; do sleep 0.1; done"
    )
    pod = {
        "metadata": {"name": "sidecar"},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False, "volumes": [token_volume],
            "initContainers": [
                {"name": "publisher", "image": BASE_IMAGE, "restartPolicy": "Always", "command": ["sh", "-c", has_token],
                 "volumeMounts": [{"name": "api", "mountPath": "/var/run/api", "readOnly": True}]},
            ],
            "containers": [
                {"name": "evaluator", "image": BASE_IMAGE, "command": ["sh", "-c", f"ls /var/run/api {sa_dir} 2>/dev/null; echo done"]},
            ],
        },
    }  # fmt: skip
    cluster.server.api.create(_api(cluster, "pods"), "default", pod)
    assert _finished(cluster, "sidecar")["status"]["phase"] == "Succeeded"
    assert _log(cluster, "sidecar", "publisher").strip() == "has-token"
    assert _log(cluster, "sidecar", "evaluator").strip() == "done"


def test_containers_reach_the_api_server_with_the_pod_credentials(cluster: LocalCluster) -> None:
    """The reducer image's kubernetes client, from inside a container, as uid 65532."""
    code = (
        "from kubernetes import client, config\n"
        "try:\n    config.load_incluster_config(); how = 'in-cluster'\n"
        "except config.ConfigException:\n    config.load_kube_config(); how = 'kubeconfig'\n"
        "cm = client.CoreV1Api().read_namespaced_config_map('reachable', 'default')\n"
        "print(how, cm.data['k'])\n"
    )
    api = cluster.server.api
    api.create(
        _api(cluster, "configmaps"), "default", {"metadata": {"name": "reachable"}, "data": {"k": "yes"}}
    )
    # under RBAC, as on a cluster: the pod's ServiceAccount (default/default) may read only what it is bound to
    rbac = "rbac.authorization.k8s.io"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["reachable"], "verbs": ["get"]}
    api.create(api.type(rbac, "v1", "roles"), "default", {"metadata": {"name": "reader"}, "rules": [rule]})
    binding = {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    }
    api.create(api.type(rbac, "v1", "rolebindings"), "default", binding)
    _create_pod(
        cluster, "client", container={"image": _reducer(), "args": ["python", "-c", code], "securityContext": HARDENED},
        securityContext=NON_ROOT,
    )  # fmt: skip
    pod = _finished(cluster, "client")
    assert pod["status"]["phase"] == "Succeeded", _log(cluster, "client")
    how, value = _log(cluster, "client").split()
    # in containers the client finds only what a node gives it: the projected token and ca.crt
    assert (how, value) == ("in-cluster", "yes")
