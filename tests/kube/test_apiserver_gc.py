"""Owner-reference garbage collection (background, foreground, orphan) and namespace deletion."""

from __future__ import annotations

from tests.kube.fixtures import wait_for
from tests.kube.rest import Rest

NS = "/api/v1/namespaces/default"


def _owner_and_child(rest: Rest, owner: str = "owner", child: str = "child", block: bool = True) -> dict:
    _, parent = rest.post(f"{NS}/configmaps", {"metadata": {"name": owner}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner,
        "uid": parent["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }
    code, _dep = rest.post(f"{NS}/configmaps", {"metadata": {"name": child, "ownerReferences": [ref]}})
    assert code == 201
    return parent


def test_background_deletion_collects_dependents(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _owner_and_child(rest)
    assert rest.delete(f"{NS}/configmaps/owner")[0] == 200
    assert rest.get(f"{NS}/configmaps/owner")[0] == 404
    wait_for(lambda: rest.get(f"{NS}/configmaps/child")[0] == 404, 5, what="dependent collected")


def test_foreground_deletion_waits_for_dependents(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _owner_and_child(rest)
    rest.patch(f"{NS}/configmaps/child", {"metadata": {"finalizers": ["example.com/slow"]}})
    code, obj = rest.delete(f"{NS}/configmaps/owner", {"propagationPolicy": "Foreground"})
    assert code == 200 and "foregroundDeletion" in obj["metadata"]["finalizers"]
    wait_for(lambda: rest.get(f"{NS}/configmaps/child")[1]["metadata"].get("deletionTimestamp"), 5)
    assert rest.get(f"{NS}/configmaps/owner")[0] == 200  # still there: a dependent blocks it
    rest.patch(f"{NS}/configmaps/child", {"metadata": {"finalizers": None}})
    wait_for(lambda: rest.get(f"{NS}/configmaps/owner")[0] == 404, 5, what="owner gone after dependents")


def test_orphan_deletion_keeps_dependents_without_owner_refs(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _owner_and_child(rest)
    rest.delete(f"{NS}/configmaps/owner", {"propagationPolicy": "Orphan"})
    wait_for(lambda: rest.get(f"{NS}/configmaps/owner")[0] == 404, 5)
    code, child = rest.get(f"{NS}/configmaps/child")
    assert code == 200 and not child["metadata"].get("ownerReferences")


def test_plain_job_delete_orphans_pods_like_batch_v1(kube_server) -> None:
    """batch/v1 keeps its legacy default: an API DELETE without a policy orphans the pods."""
    rest = Rest.admin(kube_server)
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "x", "command": ["true"]}],
                }
            }
        },
    }
    code, created = rest.post("/apis/batch/v1/namespaces/default/jobs", job)
    assert code == 201
    assert (
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"]
        == created["metadata"]["uid"]
    )
    assert created["spec"]["backoffLimit"] == 6 and created["spec"]["completions"] == 1
    ref = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "j",
        "uid": created["metadata"]["uid"],
        "controller": True,
    }
    rest.post(
        f"{NS}/pods",
        {
            "metadata": {"name": "j-pod", "ownerReferences": [ref]},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    rest.delete("/apis/batch/v1/namespaces/default/jobs/j")
    wait_for(lambda: rest.get("/apis/batch/v1/namespaces/default/jobs/j")[0] == 404, 5)
    code, pod = rest.get(f"{NS}/pods/j-pod")
    assert code == 200 and not pod["metadata"].get("ownerReferences")


def test_dependent_of_a_missing_owner_is_collected(kube_server) -> None:
    rest = Rest.admin(kube_server)
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "ghost",
        "uid": "00000000-0000-0000-0000-000000000000",
    }
    rest.post(f"{NS}/configmaps", {"metadata": {"name": "stray", "ownerReferences": [ref]}})
    wait_for(lambda: rest.get(f"{NS}/configmaps/stray")[0] == 404, 5, what="orphaned dependent collected")


def test_namespace_deletion_removes_contents(kube_server) -> None:
    rest = Rest.admin(kube_server)
    rest.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    wait_for(lambda: rest.get("/api/v1/namespaces/doomed/serviceaccounts/default")[0] == 200, 5)
    rest.post("/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "x"}})
    code, ns = rest.delete("/api/v1/namespaces/doomed")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    wait_for(lambda: rest.get("/api/v1/namespaces/doomed")[0] == 404, 5, what="namespace gone")
    assert rest.get("/api/v1/namespaces/doomed/configmaps/x")[0] == 404
