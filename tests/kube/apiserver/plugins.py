"""Admission plugins that read other objects: ServiceAccount (mutating) and PodSecurity (validating).

Order as in kube-apiserver: mutating plugins run before name generation and validation (so a
refused ``generateName`` pod is named by its prefix: ``pods "job-" is forbidden: error
looking up service account ns/sa: serviceaccount "sa" not found``), validating ones after it
(``pods "job-x7k2p" is forbidden: violates PodSecurity …``). Both answer 403 Forbidden.

ServiceAccount admission also does what makes in-cluster clients work: when the pod (or its
ServiceAccount) does not opt out with ``automountServiceAccountToken: false``, it adds the
projected ``kube-api-access-xxxxx`` volume (token, ``kube-root-ca.crt``'s ``ca.crt``,
namespace) and mounts it read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every
container. The kubelet fills it in.
"""

from __future__ import annotations

import random
from typing import Any

from tests.kube.apiserver import podsecurity
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.resources import ResourceType
from tests.kube.apiserver.store import Store

TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"


def forbidden(t: ResourceType, name: str, message: str) -> ApiError:
    qualified = t.kind_label()
    details: dict[str, Any] = {"name": name, "kind": t.plural}
    if t.group:
        details["group"] = t.group
    return ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {message}', details)


def projected_token_volume() -> dict[str, Any]:
    return {
        "name": "kube-api-access-" + "".join(random.choices(_SUFFIX, k=5)),
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


def admit_service_account(store: Store, t: ResourceType, pod: dict[str, Any], namespace: str) -> None:
    """Mutating ServiceAccount admission for a Pod create."""
    meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
    shown = meta.get("name") or meta.get("generateName") or "Unknown"
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = sa_name
    spec["serviceAccount"] = sa_name  # the deprecated alias the real server still fills in
    sa = store.get(("", "serviceaccounts", namespace, sa_name))
    if sa is None:
        raise forbidden(
            t,
            shown,
            f'error looking up service account {namespace}/{sa_name}: serviceaccount "{sa_name}" not found',
        )
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = sa.get("automountServiceAccountToken", True)
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    if not automount or any(
        m.get("mountPath") == TOKEN_MOUNT for c in containers for m in c.get("volumeMounts") or []
    ):
        return
    volume = projected_token_volume()
    spec.setdefault("volumes", []).append(volume)
    for c in containers:
        c.setdefault("volumeMounts", []).append(
            {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT}
        )


def _namespace_labels(store: Store, namespace: str) -> dict[str, str]:
    ns = store.get(("", "namespaces", "", namespace))
    return dict(((ns or {}).get("metadata") or {}).get("labels") or {})


def admit_pod_security(store: Store, t: ResourceType, obj: dict[str, Any], namespace: str) -> list[str]:
    """Validating PodSecurity admission; returns warnings, raises the 403 for Pods."""
    if t.kind == "Pod":
        meta, spec, enforce = obj["metadata"], obj.get("spec") or {}, True
    elif t.kind == "Job":
        template = (obj.get("spec") or {}).get("template") or {}
        meta, spec, enforce = template.get("metadata") or {}, template.get("spec") or {}, False
    else:
        return []
    modes, _ = podsecurity.policy(_namespace_labels(store, namespace))
    if enforce:
        detail = podsecurity.evaluate(modes["enforce"][0], meta, spec)
        if detail:
            message = f'violates PodSecurity "{podsecurity.label(modes["enforce"])}": {detail}'
            raise forbidden(t, obj["metadata"].get("name", ""), message)
    detail = podsecurity.evaluate(modes["warn"][0], meta, spec)
    if detail:
        return [f'would violate PodSecurity "{podsecurity.label(modes["warn"])}": {detail}']
    return []


def namespace_label_errors(ns: dict[str, Any]) -> list[tuple[str, str]]:
    """PodSecurity's check of a Namespace's own labels (invalid levels/versions are 422)."""
    return podsecurity.policy(dict((ns.get("metadata") or {}).get("labels") or {}))[1]
