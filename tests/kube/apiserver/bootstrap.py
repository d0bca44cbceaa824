"""The RBAC objects a fresh cluster has (kube-apiserver's bootstrap policy), the subset we serve.

``cluster-admin`` for ``system:masters``; discovery, ``/version``/``/healthz`` and the
self-review APIs for every authenticated user; the user-facing ``admin``/``edit``/``view``
ClusterRoles built by aggregation from ``system:aggregate-to-*`` (whose rules here are the real
ones restricted to the resources this server serves). A chart's ClusterRoles labelled
``rbac.authorization.k8s.io/aggregate-to-edit: "true"`` join ``edit`` exactly as on a cluster.
"""

from __future__ import annotations

from typing import Any

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_META = {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta = {
        "name": name,
        "labels": {**_META["labels"], **(labels or {})},
        "annotations": dict(_ANNOTATIONS),
    }
    return {"metadata": meta, "rules": rules}


def _aggregated(name: str, label: str) -> dict[str, Any]:
    role = _role(name, [], {"kubernetes.io/bootstrapping": "rbac-defaults"})
    role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}
    return role


def _binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **_META, "annotations": dict(_ANNOTATIONS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups],
    }


AGG = "rbac.authorization.k8s.io/aggregate-to-"


def cluster_roles() -> list[dict[str, Any]]:
    return [
        {
            **_role("cluster-admin", []),
            "rules": [
                _rule(["*"], ["*"], ["*"]),
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        },
        _role(
            "system:discovery",
            [
                {
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    "verbs": ["get"],
                }
            ],
        ),
        _role(
            "system:public-info-viewer",
            [
                {
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"],
                }
            ],
        ),
        _role(
            "system:basic-user",
            [
                _rule(
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    ["create"],
                ),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        _aggregated("admin", AGG + "admin"),
        _aggregated("edit", AGG + "edit"),
        _aggregated("view", AGG + "view"),
        _role(
            "system:aggregate-to-admin",
            [
                _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
                _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*WRITE, *READ]),
            ],
            {AGG + "admin": "true"},
        ),
        _role(
            "system:aggregate-to-edit",
            [
                _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets"], READ),
                _rule([""], ["serviceaccounts"], ["impersonate"]),
                _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
                _rule([""], ["pods/eviction"], ["create"]),
                _rule(
                    [""],
                    ["configmaps", "events", "persistentvolumeclaims", "secrets", "serviceaccounts"],
                    WRITE,
                ),
                _rule([""], ["serviceaccounts/token"], ["create"]),
                _rule(["batch"], ["cronjobs", "jobs"], WRITE),
            ],
            {AGG + "admin": "true", AGG + "edit": "true"},
        ),
        _role(
            "system:aggregate-to-view",
            [
                _rule(
                    [""],
                    [
                        "configmaps",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "serviceaccounts",
                    ],
                    READ,
                ),
                _rule([""], ["events", "namespaces/status", "pods/log", "pods/status"], READ),
                _rule([""], ["namespaces"], READ),
                _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
            ],
            {AGG + "admin": "true", AGG + "edit": "true", AGG + "view": "true"},
        ),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
    ]
