"""Render the chart with Helm's own Go engine (helm-python-sdk) and pick objects out of it.

Shared by the chart tests; the `rendered` fixture in conftest.py renders every configuration
once per session.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "benchcal"
CRD_NAME = "calibrationruns.benchcal.dev.yaml"
RELEASE, NAMESPACE = "bc", "benchcal-system"

CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"rbac": {"clusterScoped": False}, "watchNamespaces": ["ml-evals", "team-b"]},
    "metrics-off": {"metrics": {"enabled": False}},
    "servicemonitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "networkpolicy": {
        "networkPolicy": {
            "enabled": True,
            "apiServer": {"cidrs": ["10.0.0.10/32", "fd00::10/128"]},
            "namespaces": ["team-a"],
        },
    },
    "custom-images": {
        "image": {"repository": "registry.example/ops/benchcal-operator", "digest": "sha256:" + "a" * 64},
        "jobImages": {
            "evaluator": {"repository": "registry.example/ml/evaluator", "tag": "9.9.9-cu128"},
            "reducer": {"repository": ""},
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "operator": {"extraArgs": ["--verbose"], "extraEnv": [{"name": "EXTRA", "value": "1"}]},
    },
}

# (apiGroup, resource, verb) the operator needs in every namespace it watches (docs/operations.md, RBAC).


def render(values: dict[str, Any]) -> dict[str, str]:
    chart = helm.Chart.load(str(CHART))
    return chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            out.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return out


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = by_kind(objs, "Deployment")
    return dep


def container_env(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (ctr,) = deployment(objs)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in ctr["env"]}
