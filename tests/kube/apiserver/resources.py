"""The resource types the local API server serves, and their discovery documents.

Built-ins are the subset kopf, the official Python client and kubectl use with our operator.
CustomResourceDefinitions add entries at runtime (see ``ResourceType.from_crd``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RBAC = "rbac.authorization.k8s.io"
AUTHZ = "authorization.k8s.io"
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str  # "" for core
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    singular: str = ""
    categories: list[str] = field(default_factory=list)
    status_subresource: bool = False
    log_subresource: bool = False
    builtin: bool = True
    schema: dict[str, Any] | None = None  # openAPIV3Schema for custom resources
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    # batch/v1 Jobs orphan their pods on a plain API DELETE (kubectl asks for Background).
    default_orphan: bool = False
    # create-only, never stored (SelfSubjectAccessReview, TokenReview, ...): see reviews.py
    virtual: bool = False
    # further subresources for discovery, e.g. {"token": ["create"]} on serviceaccounts
    extra_subresources: dict[str, list[str]] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    def kind_label(self) -> str:
        """How error messages name the type: ``jobs.batch``, ``calibrationruns.benchcal.dev``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entry(self) -> list[dict[str, Any]]:
        entry = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create"] if self.virtual else VERBS,
        }
        if self.short_names:
            entry["shortNames"] = self.short_names
        if self.categories:
            entry["categories"] = self.categories
        out = [entry]
        if self.status_subresource:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.log_subresource:
            out.append(
                {
                    "name": f"{self.plural}/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": self.kind,
                    "verbs": ["get"],
                }
            )
        for sub, verbs in self.extra_subresources.items():
            out.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": "TokenRequest" if sub == "token" else self.kind,
                    "verbs": verbs,
                }
            )
        return out

    @classmethod
    def from_crd(cls, crd: dict[str, Any], version: dict[str, Any]) -> ResourceType:
        spec = crd["spec"]
        names = spec["names"]
        return cls(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=list(names.get("shortNames") or []),
            singular=names.get("singular") or names["kind"].lower(),
            categories=list(names.get("categories") or []),
            status_subresource="status" in (version.get("subresources") or {}),
            builtin=False,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=list(version.get("additionalPrinterColumns") or []),
        )


def builtin_types() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "namespaces", "Namespace", False, ["ns"], status_subresource=True),
        ResourceType("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
        ResourceType("", "v1", "secrets", "Secret", True),
        ResourceType("", "v1", "events", "Event", True, ["ev"]),
        ResourceType(
            "",
            "v1",
            "pods",
            "Pod",
            True,
            ["po"],
            categories=["all"],
            status_subresource=True,
            log_subresource=True,
        ),
        ResourceType(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            True,
            ["sa"],
            extra_subresources={"token": ["create"]},
        ),
        ResourceType(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            True,
            ["pvc"],
            status_subresource=True,
        ),
        ResourceType(
            "batch",
            "v1",
            "jobs",
            "Job",
            True,
            categories=["all"],
            status_subresource=True,
            default_orphan=True,
        ),
        ResourceType("events.k8s.io", "v1", "events", "Event", True, ["ev"]),
        ResourceType(RBAC, "v1", "roles", "Role", True),
        ResourceType(RBAC, "v1", "rolebindings", "RoleBinding", True),
        ResourceType(RBAC, "v1", "clusterroles", "ClusterRole", False),
        ResourceType(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        ResourceType(AUTHZ, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, virtual=True),
        ResourceType(AUTHZ, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False, virtual=True),
        ResourceType(AUTHZ, "v1", "subjectaccessreviews", "SubjectAccessReview", False, virtual=True),
        ResourceType(
            "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, virtual=True
        ),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            ["crd", "crds"],
            categories=["api-extensions"],
            status_subresource=True,
        ),
    ]


def api_versions_doc() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def api_group_list(types: list[ResourceType]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for t in types:
        if t.group:
            versions = groups.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
    items = []
    for group, versions in groups.items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        items.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_group(types: list[ResourceType], group: str) -> dict[str, Any] | None:
    doc = api_group_list(types)
    for g in doc["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def resource_list(types: list[ResourceType], group_version: str) -> dict[str, Any] | None:
    entries = [e for t in types if t.api_version == group_version for e in t.discovery_entry()]
    if not entries:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


def discovery(types: list[ResourceType], path: str) -> dict[str, Any] | None:
    """The discovery document at ``/api``, ``/apis``, ``/apis/G``, ``/api/v1`` or ``/apis/G/V``."""
    if path == "/api":
        return api_versions_doc()
    if path == "/apis":
        return api_group_list(types)
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) == 2:
        return api_group(types, parts[1])
    if parts[0] == "apis" and len(parts) == 3:
        return resource_list(types, f"{parts[1]}/{parts[2]}")
    if parts[0] == "api" and len(parts) == 2:
        return resource_list(types, parts[1])
    return None
