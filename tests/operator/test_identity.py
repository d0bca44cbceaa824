"""Items 7(a), 8, 9: a run's own identity, made by the operator under the chart's RBAC and used
with real tokens against the local API server (RBAC evaluated, escalation prevented).

The operator's token (the chart's ServiceAccount, cluster mode) creates each run's ServiceAccount,
Role, RoleBinding and summary ConfigMaps through ``benchcal_operator.k8s.create_owned``; a pod's
token (the run's ServiceAccount) then publishes and reduces through ``benchcal.publish``, and may
touch nothing of another run.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchcal import naming
from benchcal.classification import BenchmarkVerdict, StatusClassification
from benchcal.errors import BadInput
from benchcal.results import CheckpointSummary, TaskResult
from benchcal.spec import parse_run
from benchcal_operator import identity, k8s
from tests.kube.apiserver import LocalApiServer
from tests.kube.fixtures import kube_server
from tests.kube.rest import Rest

from .conftest import RUN_BODY

__all__ = ["kube_server"]
pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
NS = "ml"
PLURALS = {"ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings"}
RUNS = "/apis/benchcal.dev/v1alpha1/namespaces/ml/calibrationruns"


def _post(rest: Rest, path: str, body: dict[str, Any]) -> dict[str, Any]:
    code, out = rest.post(path, body)
    assert code == 201, out
    return out


def _install(server: LocalApiServer) -> tuple[str, str]:
    """Namespace, CRD and the chart's rendered RBAC (cluster mode); the operator's (namespace, name)."""
    helm = pytest.importorskip("helm_python")  # noqa: F841 (the chart is rendered by Helm's engine)
    from tests.charts.rendering import by_kind, deployment, objects, render

    admin = Rest.admin(server)
    _post(admin, "/api/v1/namespaces", {"metadata": {"name": NS}})
    crd = yaml.safe_load((REPO / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    _post(admin, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    objs = objects(render({}))
    dep = deployment(objs)
    release_ns = dep["metadata"]["namespace"]
    _post(admin, "/api/v1/namespaces", {"metadata": {"name": release_ns}})
    for kind, path in (
        ("ServiceAccount", f"/api/v1/namespaces/{release_ns}/serviceaccounts"),
        ("ClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
        ("ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
    ):
        for obj in by_kind(objs, kind):
            _post(admin, path, obj)
    return release_ns, dep["spec"]["template"]["spec"]["serviceAccountName"]


def _run(server: LocalApiServer, name: str, **evaluator: Any) -> Any:
    body = copy.deepcopy(RUN_BODY)
    body["metadata"] = {"name": name, "namespace": NS}
    # s1, s2 and a third the pods can load without a Secret (RUN_BODY's s3 is a hub model with a token)
    s3 = {"name": "s3", "model": {"builtin": "tiny-series/s3"}, "flops": 4e15}
    body["spec"]["checkpoints"] = [*body["spec"]["checkpoints"][:2], s3]
    if evaluator:
        body["spec"]["evaluator"] = evaluator
    return parse_run(_post(Rest.admin(server), RUNS, body))


def _as(monkeypatch: pytest.MonkeyPatch, server: LocalApiServer, tmp: Path, ns: str, sa: str) -> None:
    """Every client from here on (publish's, the operator's) authenticates as ns/sa."""
    from kubernetes.config import kube_config

    path = str(server.kubeconfig_for(tmp / f"{ns}-{sa}", ns, sa))
    monkeypatch.setenv("KUBECONFIG", path)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", path)  # read once, at import
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    k8s._api_client.cache_clear()


def _summary(ckpt: str, acc: float) -> CheckpointSummary:
    result = TaskResult("arc_easy", "world_knowledge", "multiple_choice", 0, "acc", acc, 100, 0.05, 0.25)
    flops = {"s1": 1e15, "s2": 2e15, "s3": 4e15}[ckpt]
    return CheckpointSummary(ckpt, {"source": "x"}, flops, [result], [], "", "")


@pytest.fixture
def world(kube_server: LocalApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    operator = _install(kube_server)
    runs = {name: _run(kube_server, name) for name in ("a", "b")}
    _as(monkeypatch, kube_server, tmp_path, *operator)
    for run in runs.values():
        for manifest in identity.identity_objects(run):
            assert asyncio.run(k8s.create_owned(manifest)) is True
            assert asyncio.run(k8s.create_owned(manifest)) is False  # 409 of its own: done
    yield runs
    k8s._api_client.cache_clear()


def test_the_operator_creates_each_runs_identity_under_the_charts_rbac(world, kube_server) -> None:
    """Real escalation check: the chart's operator holds every rule it grants (else 403 above)."""
    admin = Rest.admin(kube_server)
    code, role = admin.get("/apis/rbac.authorization.k8s.io/v1/namespaces/ml/roles/a-benchcal")
    assert code == 200 and role["rules"] == identity.role_rules(world["a"])
    assert role["metadata"]["ownerReferences"][0]["uid"] == world["a"].uid
    code, cms = admin.get("/api/v1/namespaces/ml/configmaps?labelSelector=" + naming.selector("a", "summary"))
    assert sorted(c["metadata"]["name"] for c in cms["items"]) == [
        "a-summary-s1",
        "a-summary-s2",
        "a-summary-s3",
    ]
    assert kube_server.denials == []


def test_a_pods_token_touches_only_its_own_run(world, kube_server, tmp_path, monkeypatch) -> None:
    from kubernetes import client, config

    from benchcal.publish import collect_summaries, publish_summary, write_run_status

    a = world["a"]
    _as(monkeypatch, kube_server, tmp_path, NS, naming.pod_identity_name("a"))
    monkeypatch.setenv(naming.ENV_RUN, "a")
    monkeypatch.setenv(naming.ENV_RUN_UID, a.uid)
    publish_summary(_summary("s2", 0.6), "ml/a-summary-s2")
    publish_summary(_summary("s3", 0.7), "ml/a-summary-s3")
    with pytest.raises(BadInput, match=r"no summary\.json key"):
        collect_summaries("ml/a")  # s1 not published yet: named, not skipped
    publish_summary(_summary("s1", 0.2), "ml/a-summary-s1")
    publish_summary(_summary("s1", 0.3), "ml/a-summary-s1")  # a retried pod: replaced
    got = collect_summaries("ml/a")
    assert [(s.checkpoint, s.results[0].accuracy) for s in got] == [("s1", 0.3), ("s2", 0.6), ("s3", 0.7)]
    classification = StatusClassification.from_verdicts([BenchmarkVerdict("arc_easy", "robust")])
    write_run_status("ml/a", classification, {"uri": "/r", "size": 3})
    assert kube_server.denials == []

    other = "system:serviceaccount:ml:a-benchcal"
    with pytest.raises(
        BadInput, match=rf'configmaps "b-summary-s1" is forbidden: User "{other}" cannot patch'
    ):
        publish_summary(_summary("s1", 0.9), "ml/b-summary-s1")
    with pytest.raises(
        BadInput,
        match=r'calibrationruns.benchcal.dev "b" is forbidden: .* cannot patch resource "calibrationruns/status"',
    ):
        write_run_status("ml/b", classification, None)
    with pytest.raises(BadInput, match=r"forbidden"):
        collect_summaries("ml/b")
    with pytest.raises(BadInput, match=r'"new-configmap" is forbidden: .* cannot patch'):
        publish_summary(_summary("s1", 0.9), "ml/new-configmap")  # RBAC answers before existence
    config.load_kube_config()
    with pytest.raises(client.exceptions.ApiException) as listing:
        client.CoreV1Api().list_namespaced_config_map(NS)
    assert listing.value.status == 403
    admin = Rest.admin(kube_server)
    assert admin.get("/api/v1/namespaces/ml/configmaps/b-summary-s1")[1].get("data") is None
    assert "classification" not in (admin.get(f"{RUNS}/b")[1].get("status") or {})

    # what the reducer refuses to classify: a corrupt summary, one of a deleted namesake
    corrupt = {"data": {"summary.json": "{not json"}}
    assert admin.patch("/api/v1/namespaces/ml/configmaps/a-summary-s2", corrupt)[0] == 200
    with pytest.raises(BadInput, match="ConfigMap ml/a-summary-s2: invalid JSON"):
        collect_summaries("ml/a")
    with pytest.raises(BadInput, match="ConfigMap ml/a-summary-s1: owned by another CalibrationRun"):
        collect_summaries("ml/a", run_uid="uid-of-a-deleted-namesake")


def test_a_changed_shard_count_adds_names_to_the_role(world, kube_server, tmp_path, monkeypatch) -> None:
    import dataclasses

    a = world["a"]
    sharded = dataclasses.replace(a, evaluator=dataclasses.replace(a.evaluator, shards=2))
    role = next(m for m in identity.identity_objects(sharded) if m["kind"] == "Role")
    assert asyncio.run(k8s.create_owned(role)) is False
    code, got = Rest.admin(kube_server).get(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/roles/a-benchcal"
    )
    assert code == 200, got
    # names are added, never taken away: pods of Jobs started with one shard can still publish
    sharded_names = [f"a-summary-s{c}-{i}" for c in (1, 2, 3) for i in (0, 1)]
    assert got["rules"][0]["resourceNames"] == [
        "a-summary-s1",
        "a-summary-s2",
        "a-summary-s3",
        *sharded_names,
    ]
    assert asyncio.run(k8s.create_owned(role)) is False  # nothing missing: no further write
    code, again = Rest.admin(kube_server).get(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/roles/a-benchcal"
    )
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]


def test_another_runs_object_of_the_same_name_is_a_conflict(world, kube_server) -> None:
    b = world["b"]
    foreign = copy.deepcopy(next(m for m in identity.identity_objects(b) if m["kind"] == "ServiceAccount"))
    foreign["metadata"]["name"] = naming.pod_identity_name("a")
    with pytest.raises(k8s.NameConflict, match="ServiceAccount a-benchcal already exists and belongs to a"):
        asyncio.run(k8s.create_owned(foreign))
