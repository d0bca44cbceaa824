"""Minimal OpenAPI v3 documents: enough for kubectl 1.32's apply and explain.

kubectl reads ``/openapi/v3`` to learn that PATCH accepts ``fieldValidation`` (so it validates
on the server instead of downloading schemas), and ``kubectl explain`` reads the component
schemas. Custom resources publish their CRD schema; built-ins publish only their PATCH
operations (kubectl then builds strategic merge patches from its compiled-in Go types).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.kube.apiserver.resources import ResourceType


def _gv_path(t: ResourceType) -> str:
    return f"api/{t.version}" if not t.group else f"apis/{t.group}/{t.version}"


def _schema_name(t: ResourceType) -> str:
    group = ".".join(reversed(t.group.split("."))) if t.group else "io.k8s.api.core"
    return f"{group}.{t.version}.{t.kind}"


def gv_document(types: list[ResourceType], gv_path: str) -> dict[str, Any] | None:
    selected = [t for t in types if _gv_path(t) == gv_path]
    if not selected:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for t in selected:
        gvk = [{"group": t.group, "version": t.version, "kind": t.kind}]
        prefix = (
            f"/{gv_path}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"/{gv_path}/{t.plural}"
        )
        params = [
            {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for n in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        paths[prefix + "/{name}"] = {
            "patch": {
                "operationId": f"patch{t.kind}",
                "parameters": params,
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {"200": {"description": "OK"}},
            },
        }
        if not t.builtin and t.schema is not None:
            schemas[_schema_name(t)] = {**t.schema, "x-kubernetes-group-version-kind": gvk}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def root_document(types: list[ResourceType]) -> dict[str, Any]:
    paths = {}
    for gv in sorted({_gv_path(t) for t in types}):
        doc = gv_document(types, gv)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


def document(types: list[ResourceType], path: str) -> dict[str, Any] | None:
    """``/openapi/v3`` (the root) or ``/openapi/v3/<group-version path>``."""
    if path == "/openapi/v3":
        return root_document(types)
    return gv_document(types, path[len("/openapi/v3/") :])
