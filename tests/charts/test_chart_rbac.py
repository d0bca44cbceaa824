"""Least-privilege RBAC of the chart, checked by following every binding to the rules it grants,
in cluster mode and namespace mode; the docs/operations.md tables must say the same."""

from __future__ import annotations

from typing import Any

import pytest

helm = pytest.importorskip("helm_python")

from tests.charts.rendering import (  # noqa: E402  (after the importorskip guard)
    CONFIGS,
    NAMESPACE,
    RELEASE,
    REPO_ROOT,
    by_kind,
    container_env,
    render,
)

# What benchcal_operator/k8s.py and kopf call (docs/operations.md, "How the controller works").
OPERATOR_NEEDS = {
    *(("benchcal.dev", "calibrationruns", v) for v in ("get", "list", "watch", "patch")),
    ("benchcal.dev", "calibrationruns/status", "patch"),
    ("benchcal.dev", "calibrationruns/finalizers", "update"),
    *(("batch", "jobs", v) for v in ("get", "list", "watch", "create", "patch")),
    ("", "pods", "list"),
    ("", "events", "create"),  # kopf posts core/v1 Events (never patches, never events.k8s.io)
    # issue 11 item 5: why a Job makes no progress (FailedCreate events, Kueue Workloads)
    ("", "events", "list"),
    ("kueue.x-k8s.io", "workloads", "list"),
    # items 7(a)/8: each run's own ServiceAccount, Role, RoleBinding and summary ConfigMaps
    *(("", "serviceaccounts", v) for v in ("get", "create")),
    *(("rbac.authorization.k8s.io", "roles", v) for v in ("get", "create", "update")),
    *(("rbac.authorization.k8s.io", "rolebindings", v) for v in ("get", "create")),
    *(("", "configmaps", v) for v in ("get", "create", "patch")),
}
OPERATOR_CLUSTER_NEEDS = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")
}
# kopf with --namespace lists/watches namespaces to match its patterns (not when cluster-wide)
NAMESPACE_SCAN = {("", "namespaces", "list"), ("", "namespaces", "watch")}


def rule_grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples of some rules (resourceNames, if any, are not kept)."""
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def effective_grants(objs: list[dict[str, Any]], sa: str, sa_ns: str, namespace: str | None):
    """What ServiceAccount sa_ns/sa may do in `namespace` (None: cluster-wide bindings only)."""
    roles = {("ClusterRole", o["metadata"]["name"], None): o for o in by_kind(objs, "ClusterRole")}
    roles |= {("Role", o["metadata"]["name"], o["metadata"]["namespace"]): o for o in by_kind(objs, "Role")}
    grants: set[tuple[str, str, str]] = set()
    for b in by_kind(objs, "ClusterRoleBinding") + by_kind(objs, "RoleBinding"):
        b_ns = b["metadata"].get("namespace")
        if b["kind"] == "RoleBinding" and b_ns != namespace:
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == sa and s["namespace"] == sa_ns
            for s in b["subjects"]
        ):
            continue
        ref = b["roleRef"]
        role = roles[(ref["kind"], ref["name"], b_ns if ref["kind"] == "Role" else None)]
        grants |= rule_grants(role["rules"])
    return grants


# ---- RBAC ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_rbac_never_grants_exec_wildcards_or_cluster_wide_secrets(rendered, name: str) -> None:
    for role in by_kind(rendered[name], "ClusterRole") + by_kind(rendered[name], "Role"):
        where = f"{name}: {role['kind']}/{role['metadata']['name']}"
        for group, resource, verb in rule_grants(role["rules"]):
            assert "*" not in (group, resource, verb), where
            assert resource not in {"pods/exec", "pods/attach", "pods/portforward"}, where
            assert resource != "secrets", where  # Jobs mount Secrets by reference; nobody here reads them
            assert verb not in {"escalate", "bind", "impersonate"}, where


def test_cluster_mode_grants_the_operator_exactly_what_it_needs(rendered) -> None:
    grants = effective_grants(rendered["defaults"], f"{RELEASE}-benchcal", NAMESPACE, namespace=None)
    assert grants == OPERATOR_NEEDS | OPERATOR_CLUSTER_NEEDS  # kopf lists namespaces only when namespaced


def test_namespace_mode_grants_only_in_watched_namespaces(rendered) -> None:
    objs = rendered["namespaced"]
    sa = f"{RELEASE}-benchcal"
    cluster_wide = OPERATOR_CLUSTER_NEEDS | NAMESPACE_SCAN
    assert effective_grants(objs, sa, NAMESPACE, namespace=None) == cluster_wide
    for ns in ("ml-evals", "team-b"):
        assert effective_grants(objs, sa, NAMESPACE, namespace=ns) == OPERATOR_NEEDS | cluster_wide
    assert effective_grants(objs, sa, NAMESPACE, namespace="kube-system") == cluster_wide
    assert container_env(objs)["BENCHCAL_NAMESPACES"] == "ml-evals,team-b"


def run_role_grants() -> set[tuple[str, str, str]]:
    """What the operator puts into every run's Role (benchcal_operator/identity.py), names dropped."""
    identity = pytest.importorskip("benchcal_operator.identity")
    from benchcal.spec import parse_run

    body = {
        "apiVersion": "benchcal.dev/v1alpha1",
        "kind": "CalibrationRun",
        "metadata": {"name": "r", "namespace": "ml-evals", "uid": "u"},
        "spec": {
            "checkpoints": [
                {"name": f"s{i}", "model": {"builtin": f"tiny-series/s{i}"}, "flops": i * 1e15}
                for i in (1, 2, 3)
            ],
            "suite": {"benchmarks": [{"name": "arc_easy"}]},
        },
    }
    rules = identity.role_rules(parse_run(body))
    assert all(rule["resourceNames"] for rule in rules)  # every grant of a pod names its objects
    return rule_grants(rules)


@pytest.mark.parametrize(
    "name, namespaces", [("defaults", ["anywhere"]), ("namespaced", ["ml-evals", "team-b"])]
)
def test_the_operator_holds_every_rule_it_grants_a_runs_pods(rendered, name, namespaces) -> None:
    """RBAC escalation prevention: creating the per-run Role and its RoleBinding is refused unless the
    operator holds those rules itself (tests/kube enforces it; here the chart is read)."""
    sa = f"{RELEASE}-benchcal"
    for ns in namespaces:
        assert run_role_grants() <= effective_grants(rendered[name], sa, NAMESPACE, namespace=ns)


@pytest.mark.parametrize("name", CONFIGS)
def test_no_shared_job_identity_is_installed(rendered, name) -> None:
    """Items 7(a)/8: no namespace-wide ServiceAccount for pods; the only identity is the operator's."""
    objs = rendered[name]
    assert [o["metadata"]["name"] for o in by_kind(objs, "ServiceAccount")] == [f"{RELEASE}-benchcal"]
    for binding in by_kind(objs, "ClusterRoleBinding") + by_kind(objs, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-benchcal", "namespace": NAMESPACE}
        ]
    assert not any(e.startswith("BENCHCAL_JOB_SERVICE") for e in container_env(objs))


def test_aggregated_user_roles_only_touch_calibrationruns(rendered) -> None:
    roles = {r["metadata"]["name"]: r for r in by_kind(rendered["defaults"], "ClusterRole")}
    editor, viewer = (
        roles[f"{RELEASE}-benchcal-calibrationrun-editor"],
        roles[f"{RELEASE}-benchcal-calibrationrun-viewer"],
    )
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    for role in (editor, viewer):
        assert {(g, r.split("/")[0]) for g, r, _ in rule_grants(role["rules"])} == {
            ("benchcal.dev", "calibrationruns")
        }
    assert {v for _, _, v in rule_grants(viewer["rules"])} == {"get", "list", "watch"}


def test_namespace_mode_without_namespaces_fails_with_a_fix() -> None:
    with pytest.raises(helm.HelmError, match="watchNamespaces"):
        render({"rbac": {"clusterScoped": False}})


def doc_table_grants(heading_start: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) rows of the first table after a line starting with heading_start
    in docs/operations.md; cells may pair resources with verb lists using ';'."""
    lines = (REPO_ROOT / "docs" / "operations.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading_start))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    grants = set()
    for groups, resources, verbs, *_ in rows[2:]:  # skip header and separator
        for resource, verb_list in zip(resources.split(";"), verbs.split(";"), strict=True):
            for group in groups.split(","):
                for verb in verb_list.split(","):
                    grants.add((group.strip().strip('"'), resource.strip(), verb.strip()))
    return grants


def test_operations_doc_rbac_tables_match_the_chart() -> None:
    assert doc_table_grants("Operator (ServiceAccount") == OPERATOR_NEEDS
    assert doc_table_grants("Evaluator and reducer pods") == run_role_grants()
