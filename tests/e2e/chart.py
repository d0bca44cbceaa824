"""The e2e world's install: what ``helm install`` of charts/benchcal would put into the cluster.

The chart is rendered by Helm's own engine (helm-python-sdk, tests/charts/rendering.py) with the
chart defaults (cluster mode: runs in any namespace, each with the identity the operator makes
for it) and the locally built images. Of the rendered
objects, everything the local server serves is applied with kubectl — CRD (from the chart's
crds/), ServiceAccounts, ClusterRoles, ClusterRoleBindings, Roles, RoleBindings. The Deployment
is not applied (there is no controller-manager for it): its operator container's ``args`` and
``env`` become the operator process instead, authenticated as the chart's ServiceAccount.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.charts.rendering import CHART, by_kind, deployment, objects, render

RELEASE_NAMESPACE = "benchcal-system"
SERVED_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
LOCAL_IMAGES = {
    "evaluator": {"repository": "localhost/benchcal-evaluator", "tag": "dev"},
    "reducer": {"repository": "localhost/benchcal-reducer", "tag": "dev"},
}
# Deployment flags that make no sense for a process on a shared machine (a fixed port)
DROPPED_ARGS = ("--liveness",)


@dataclass(frozen=True)
class Install:
    objects: list[dict[str, Any]]  # what is applied, in apply order
    crd_files: list[Path]
    operator_account: tuple[str, str]  # (namespace, name) of the operator's ServiceAccount
    operator_args: list[str]  # the container's args, e.g. ["benchcal", "operator", "--standalone"]
    operator_env: dict[str, str]  # the container's env with literal values (fieldRefs resolved)


def values_for(namespace: str, mode: str = "cluster") -> dict[str, Any]:
    """``cluster``: the chart default (watch every namespace, nothing made per namespace);
    ``namespaced``: ``rbac.clusterScoped=false`` watching only ``namespace``."""
    if mode == "namespaced":
        return {"rbac": {"clusterScoped": False}, "watchNamespaces": [namespace], "jobImages": LOCAL_IMAGES}
    return {"jobImages": LOCAL_IMAGES}


def _operator(dep: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    args: list[str] = []
    skip = False
    for arg in container.get("args") or []:
        if skip:
            skip = False
            continue
        if arg in DROPPED_ARGS:
            skip = True
            continue
        if any(arg.startswith(f"{flag}=") for flag in DROPPED_ARGS):
            continue
        args.append(arg)
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif (item.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = dep["metadata"]["namespace"]
    return args, env


def install(namespace: str, mode: str = "cluster") -> Install:
    objs = objects(render(values_for(namespace, mode)))
    dep = deployment(objs)
    args, env = _operator(dep)
    applied = [o for kind in SERVED_KINDS for o in by_kind(objs, kind)]
    sa = dep["spec"]["template"]["spec"]["serviceAccountName"]
    return Install(
        objects=applied,
        crd_files=sorted((CHART / "crds").glob("*.yaml")),
        operator_account=(dep["metadata"]["namespace"], sa),
        operator_args=args,
        operator_env=env,
    )


def manifests_by_namespace(install: Install) -> dict[str, str]:
    """YAML per namespace ("" for cluster-scoped objects): kubectl apply takes one -n at a time."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for obj in install.objects:
        groups.setdefault(obj["metadata"].get("namespace", ""), []).append(obj)
    return {ns: yaml.safe_dump_all(objs, sort_keys=False) for ns, objs in groups.items()}
