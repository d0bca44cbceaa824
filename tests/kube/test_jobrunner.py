"""The local job runner behaves like the job controller + kubelet for what the operator relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kube.fixtures import LocalCluster, wait_for
from tests.kube.jobrunner import format_indexes, parse_indexes


@pytest.fixture
def cluster(tmp_path: Path):
    with LocalCluster(tmp_path, pvc_dirs={"results": tmp_path / "pvc-results"}) as c:
        c.runner.failure_backoff = 0.1
        api = c.server.api
        claim = {
            "metadata": {"name": "results"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
        api.create(api.type("", "v1", "persistentvolumeclaims"), "default", claim)
        yield c


def _job(name: str, script: str, **spec: Any) -> dict:
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}
    container.update(spec.pop("container", {}))
    pod_spec = {"restartPolicy": "Never", "containers": [container], **spec.pop("pod", {})}
    return {"metadata": {"name": name}, "spec": {"template": {"spec": pod_spec}, **spec}}


def _run(cluster: LocalCluster, job: dict, timeout: float = 20) -> dict:
    api = cluster.server.api
    t = api.type("batch", "v1", "jobs")
    api.create(t, "default", job)
    name = job["metadata"]["name"]

    def finished() -> dict | None:
        obj = api.get(t, "default", name)
        conds = {c["type"] for c in obj["status"].get("conditions") or [] if c["status"] == "True"}
        return obj if conds & {"Complete", "Failed"} else None

    return wait_for(finished, timeout, what=f"job {name} to finish")


def _pods(cluster: LocalCluster, job: str) -> list[dict]:
    api = cluster.server.api
    pods, _ = api.list(api.type("", "v1", "pods"), "default", f"batch.kubernetes.io/job-name={job}")
    return pods


def _condition(job: dict, ctype: str) -> dict:
    return next(c for c in job["status"]["conditions"] if c["type"] == ctype)


def test_index_sets_roundtrip() -> None:
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}


def test_backoff_limit_counts_failures(cluster: LocalCluster) -> None:
    job = _run(cluster, _job("flaky", "exit 1", backoffLimit=1))
    assert job["status"]["failed"] == 2 and _condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
    assert _condition(job, "FailureTarget")["status"] == "True"
    assert len(_pods(cluster, "flaky")) == 2


def test_pod_failure_policy_fail_job_on_exit_code(cluster: LocalCluster) -> None:
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}}
        ]
    }
    job = _run(
        cluster,
        _job(
            "bad-input",
            "echo no such model >&2; exit 2",
            backoffLimit=5,
            podFailurePolicy=policy,
            container={"terminationMessagePolicy": "FallbackToLogsOnError"},
        ),
    )
    cond = _condition(job, "Failed")
    assert cond["reason"] == "PodFailurePolicy" and "exit code 2" in cond["message"]
    pods = _pods(cluster, "bad-input")
    assert len(pods) == 1  # no retry
    term = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 2 and term["message"].strip() == "no such model"


def test_disruption_is_ignored_by_policy_and_retried(cluster: LocalCluster) -> None:
    policy = {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    }
    api = cluster.server.api
    api.create(
        api.type("batch", "v1", "jobs"),
        "default",
        _job(
            "victim",
            "test -e $(MARK) && exit 0; touch $(MARK); sleep 30",
            backoffLimit=0,
            podFailurePolicy=policy,
            container={
                "env": [{"name": "MARK", "value": "/data/mark"}],
                "volumeMounts": [{"name": "d", "mountPath": "/data"}],
            },
            pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "results"}}]},
        ),
    )
    first = wait_for(
        lambda: [p for p in _pods(cluster, "victim") if p["status"].get("phase") == "Running"], 10
    )[0]
    wait_for(lambda: (Path(cluster.work_dir) / "pvc-results" / "mark").exists(), 10, what="first pod started")
    cluster.runner.disrupt_pod("default", first["metadata"]["name"])
    job = wait_for(lambda: _finished(cluster, "victim"), 20)
    assert _condition(job, "Complete")["status"] == "True"
    assert job["status"].get("failed", 0) == 0 and job["status"]["succeeded"] == 1
    disrupted = api.get(api.type("", "v1", "pods"), "default", first["metadata"]["name"])
    assert any(c["type"] == "DisruptionTarget" for c in disrupted["status"]["conditions"])


def _finished(cluster: LocalCluster, name: str) -> dict | None:
    api = cluster.server.api
    obj = api.get(api.type("batch", "v1", "jobs"), "default", name)
    conds = {c["type"] for c in obj["status"].get("conditions") or [] if c["status"] == "True"}
    return obj if conds & {"Complete", "Failed"} else None


def test_indexed_job_sets_completion_index(cluster: LocalCluster) -> None:
    job = _run(
        cluster,
        _job(
            "shards",
            "echo $JOB_COMPLETION_INDEX > /out/$JOB_COMPLETION_INDEX",
            completions=3,
            parallelism=2,
            completionMode="Indexed",
            container={"volumeMounts": [{"name": "o", "mountPath": "/out"}]},
            pod={"volumes": [{"name": "o", "persistentVolumeClaim": {"claimName": "results"}}]},
        ),
    )
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    out = Path(cluster.work_dir) / "pvc-results"
    # a fresh claim is a formatted volume: lost+found is there too
    assert sorted(p.read_text().strip() for p in out.iterdir() if p.name != "lost+found") == ["0", "1", "2"]
    hosts = sorted(p["spec"]["hostname"] for p in _pods(cluster, "shards"))
    assert hosts == ["shards-0", "shards-1", "shards-2"]


def test_active_deadline(cluster: LocalCluster) -> None:
    job = _run(cluster, _job("slow", "sleep 30", activeDeadlineSeconds=1), timeout=15)
    assert _condition(job, "Failed")["reason"] == "DeadlineExceeded"
    wait_for(lambda: not cluster.runner.running, 10, what="processes stopped")


def test_suspend_and_resume(cluster: LocalCluster) -> None:
    api = cluster.server.api
    t = api.type("batch", "v1", "jobs")
    api.create(t, "default", _job("later", "exit 0", suspend=True))
    wait_for(
        lambda: any(
            c["type"] == "Suspended" and c["status"] == "True"
            for c in api.get(t, "default", "later")["status"].get("conditions") or []
        ),
        5,
    )
    assert _pods(cluster, "later") == []
    api.patch(t, "default", "later", "application/merge-patch+json", {"spec": {"suspend": False}})
    job = wait_for(lambda: _finished(cluster, "later"), 15)
    assert (
        _condition(job, "Suspended")["status"] == "False" and _condition(job, "Complete")["status"] == "True"
    )


def test_configmap_volume_env_refs_and_path_rewriting(cluster: LocalCluster) -> None:
    api = cluster.server.api
    api.create(
        api.type("", "v1", "configmaps"),
        "default",
        {"metadata": {"name": "cfg"}, "data": {"k": "from-cm\n", "e": "env-cm"}},
    )
    script = 'cat /etc/cfg/k > /scratch/a; echo "$NS $POD_NAME $FROM_CM" >> /scratch/a; cat /scratch/a'
    job = _run(
        cluster,
        _job(
            "io",
            script,
            container={
                "env": [
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "e"}}},
                ],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "s", "mountPath": "/scratch"},
                ],
            },
            pod={"volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "s", "emptyDir": {}}]},
        ),
    )
    assert _condition(job, "Complete")["status"] == "True"
    pod = _pods(cluster, "io")[0]
    log = (
        (Path(cluster.server.log_dir) / "default" / pod["metadata"]["name"] / "main.log")
        .read_text()
        .splitlines()
    )
    assert log == ["from-cm", f"default {pod['metadata']['name']} env-cm"]


def test_node_vanishing_fails_running_pods_as_disruptions(cluster: LocalCluster) -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    api = cluster.server.api
    api.create(
        api.type("batch", "v1", "jobs"),
        "default",
        _job(
            "on-node",
            "test -e /d/once && exit 0; touch /d/once; sleep 30",
            backoffLimit=0,
            podFailurePolicy=policy,
            container={"volumeMounts": [{"name": "d", "mountPath": "/d"}]},
            pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "results"}}]},
        ),
    )
    wait_for(lambda: (Path(cluster.work_dir) / "pvc-results" / "once").exists(), 10, what="pod started")
    running = [f"default/{p['metadata']['name']}" for p in _pods(cluster, "on-node")]
    assert cluster.runner.vanish_node() == running
    job = wait_for(lambda: _finished(cluster, "on-node"), 20)
    assert _condition(job, "Complete")["status"] == "True" and job["status"].get("failed", 0) == 0
    reasons = [
        c.get("reason")
        for p in _pods(cluster, "on-node")
        for c in p["status"]["conditions"]
        if c["type"] == "DisruptionTarget"
    ]
    assert reasons == ["DeletionByPodGC"]


def test_start_delay_keeps_pods_pending(cluster: LocalCluster) -> None:
    cluster.runner.start_delay = 1.5
    api = cluster.server.api
    api.create(api.type("batch", "v1", "jobs"), "default", _job("delayed", "exit 0"))
    pod = wait_for(lambda: _pods(cluster, "delayed"), 5)[0]
    assert pod["status"]["phase"] == "Pending"
    job = wait_for(lambda: _finished(cluster, "delayed"), 15)
    assert _condition(job, "Complete")["status"] == "True"


def test_deleting_a_running_job_in_background_removes_its_pods(cluster: LocalCluster) -> None:
    api = cluster.server.api
    api.create(api.type("batch", "v1", "jobs"), "default", _job("doomed", "sleep 30"))
    wait_for(lambda: cluster.runner.running, 10, what="pod running")
    api.delete(api.type("batch", "v1", "jobs"), "default", "doomed", {"propagationPolicy": "Background"})
    wait_for(lambda: not _pods(cluster, "doomed"), 15, what="pods of the deleted Job gone")
    assert not cluster.runner.running


# ------------------------------------------------------------ admission refusals and credentials
def _events(cluster: LocalCluster, job: str) -> list[dict]:
    api = cluster.server.api
    events, _ = api.list(api.type("", "v1", "events"), "default")
    return [e for e in events if e["involvedObject"]["name"] == job and e["involvedObject"]["kind"] == "Job"]


def test_missing_service_account_gives_failed_create_and_no_pod(cluster: LocalCluster) -> None:
    api = cluster.server.api
    cluster.runner.create_backoff = 0.2
    job = _job("orphan", "true", pod={"serviceAccountName": "ghost"})
    api.create(api.type("batch", "v1", "jobs"), "default", job)
    # the controller retries with backoff and aggregates the repeats into one event's count
    (event,) = wait_for(
        lambda: [e for e in _events(cluster, "orphan") if e.get("count", 1) >= 3] or None,
        20,
        what="repeated FailedCreate",
    )
    assert event["type"] == "Warning" and event["reason"] == "FailedCreate"
    assert event["source"] == {"component": "job-controller"}
    assert event["message"] == (
        'Error creating: pods "orphan-" is forbidden: error looking up service account default/ghost: '
        'serviceaccount "ghost" not found'
    )
    assert _pods(cluster, "orphan") == []
    status = api.get(api.type("batch", "v1", "jobs"), "default", "orphan")["status"]
    assert status.get("active", 0) == 0 and not status.get("conditions")
    # the account appears: the next retry creates the pod and the Job completes
    api.create(api.type("", "v1", "serviceaccounts"), "default", {"metadata": {"name": "ghost"}})
    wait_for(
        lambda: any(
            c["type"] == "Complete"
            for c in api.get(api.type("batch", "v1", "jobs"), "default", "orphan")["status"].get("conditions")
            or []
        ),
        30,
        what="the Job to complete once its ServiceAccount exists",
    )


def test_pod_security_refusal_is_a_failed_create(cluster: LocalCluster) -> None:
    api = cluster.server.api
    ns = {"metadata": {"name": "locked", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    api.create(api.type("", "v1", "namespaces"), None, ns)
    _, warnings = api.create(api.type("batch", "v1", "jobs"), "locked", _job("loose", "true"))
    assert warnings and warnings[0].startswith('would violate PodSecurity "restricted:latest"')

    def refused() -> list[dict] | None:
        events, _ = api.list(api.type("", "v1", "events"), "locked")
        return [e for e in events if e["reason"] == "FailedCreate"] or None

    (event,) = wait_for(refused, 20, what="FailedCreate for PodSecurity")
    assert event["message"].startswith('Error creating: pods "loose-')
    assert (
        'is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
        in event["message"]
    )
    pods, _ = api.list(api.type("", "v1", "pods"), "locked")
    assert pods == []


def test_pods_authenticate_as_their_service_account(cluster: LocalCluster, tmp_path: Path) -> None:
    api = cluster.server.api
    api.create(api.type("", "v1", "serviceaccounts"), "default", {"metadata": {"name": "worker"}})
    probe = "kubectl get configmaps kube-root-ca.crt -o name; kubectl get pods 2>&1; true"
    job = _run(cluster, _job("whoami", probe, pod={"serviceAccountName": "worker"}))
    assert job["status"]["succeeded"] == 1
    log = (
        tmp_path / "logs" / "default" / _pods(cluster, "whoami")[0]["metadata"]["name"] / "main.log"
    ).read_text()
    # the token is the pod's own ServiceAccount's: no RBAC grant, so both reads are refused
    assert 'User "system:serviceaccount:default:worker" cannot get resource "configmaps"' in log
    assert 'User "system:serviceaccount:default:worker" cannot list resource "pods"' in log
    # without automount the pod has no credentials at all
    job = _run(
        cluster,
        _job(
            "no-token",
            'test -z "$KUBECONFIG" && test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token',
            pod={"automountServiceAccountToken": False},
        ),
    )
    assert job["status"]["succeeded"] == 1
