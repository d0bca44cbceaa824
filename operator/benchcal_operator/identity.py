"""Pure builders of a run's own identity and the objects its pods may write (plain dicts).

Per CalibrationRun, before its first Job, the operator creates (all owned by the run, so they go
with it, all named by ``benchcal.naming``):

- a ServiceAccount ``<run>-benchcal`` that its evaluator and reducer pods run as;
- a Role of the same name granting only what those pods do, by ``resourceNames``: get/patch of
  this run's summary ConfigMaps, get of the run, patch of its ``status``;
- a RoleBinding of the same name binding the Role to the ServiceAccount;
- the run's summary ConfigMaps, empty (RBAC cannot limit ``create`` to names, so the pods never
  create: they patch the ConfigMaps the operator made).

A token of one run therefore cannot read or write another run's ConfigMaps or status, nor any
other object. With ``spec.evaluator.serviceAccountName`` the pods run as that account and no
ServiceAccount, Role or RoleBinding is created (the ConfigMaps still are): whoever set it grants
those rights (docs/operations.md, RBAC).
"""

from __future__ import annotations

from typing import Any

from benchcal import naming
from benchcal.api import GROUP, PLURAL
from benchcal.spec import CalibrationRun
from benchcal_operator.jobs import owner_reference, pod_service_account

RBAC = "rbac.authorization.k8s.io"
__all__ = ["identity_objects", "pod_service_account", "role_rules", "summary_names"]


def summary_names(run: CalibrationRun) -> list[str]:
    return naming.summary_configmap_names(
        run.name, [c.name for c in run.checkpoints], max(1, run.evaluator.shards)
    )


def role_rules(run: CalibrationRun) -> list[dict[str, Any]]:
    """Exactly what the pods call (benchcal.publish): nothing without a name."""
    return [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": summary_names(run),
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [run.name], "verbs": ["get"]},
        {
            "apiGroups": [GROUP],
            "resources": [f"{PLURAL}/status"],
            "resourceNames": [run.name],
            "verbs": ["patch"],
        },
    ]


def _meta(run: CalibrationRun, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": run.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(run)],
    }


def summary_configmaps(run: CalibrationRun) -> list[dict[str, Any]]:
    out = []
    for ckpt in run.checkpoints:
        labels = naming.child_labels(run.name, naming.SUMMARY, ckpt.name)
        for name in naming.summary_configmap_names(run.name, [ckpt.name], max(1, run.evaluator.shards)):
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(run, name, labels)})
    return out


def identity_objects(run: CalibrationRun) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding (none with a spec-chosen account), then the ConfigMaps."""
    objs: list[dict[str, Any]] = []
    if not run.evaluator.service_account_name:
        name = naming.pod_identity_name(run.name)
        labels = naming.child_labels(run.name, naming.IDENTITY)
        objs += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(run, name, labels)},
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": _meta(run, name, labels),
                "rules": role_rules(run),
            },
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": _meta(run, name, labels),
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": run.namespace}],
            },
        ]
    return objs + summary_configmaps(run)
