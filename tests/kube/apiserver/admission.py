"""Admission: what the server does to an object before storing it.

Defaults and validation for built-in kinds and CRD schemas (prune, default, validate, strict
field validation), CRD manifest checks, and the status-subresource split between spec and
status writes. Pure functions of the type and the objects.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kube.apiserver import builtins, schema
from tests.kube.apiserver.errors import ApiError, invalid
from tests.kube.apiserver.resources import ResourceType


def admit(
    t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
) -> list[str]:
    warnings: list[str] = []
    name = obj["metadata"]["name"]
    if not t.builtin and t.schema is not None:
        pruned = schema.prune(obj, t.schema, root=True)
        dropped = dropped_paths(obj, pruned)
        if dropped and field_validation == "Strict":
            raise ApiError(
                400,
                "BadRequest",
                f'{t.kind} in version "{t.version}" cannot be handled as a '
                f"{t.kind}: strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in dropped),
            )
        if dropped and field_validation == "Warn":
            warnings += [f'unknown field "{p}"' for p in dropped]
        obj.clear()
        obj.update(pruned)
        schema.apply_defaults(obj, t.schema)
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        if t.status_subresource:
            body.pop("status", None)
        errs = schema.validate(
            body,
            {
                **t.schema,
                "required": [
                    r
                    for r in t.schema.get("required", [])
                    if r not in ("apiVersion", "kind", "metadata")
                    and not (t.status_subresource and r == "status")
                ],
            },
        )
        builtins.validate_name(t.kind, t.group, name)
        if errs:
            raise invalid(t.kind, t.group, name, errs)
        return warnings
    if t.kind == "Job":
        if old is None:
            builtins.prepare_job(obj, obj["metadata"]["uid"])
        builtins.validate_job(obj)
        if old is not None:
            builtins.validate_job_update(old, obj)
    elif t.kind == "Pod":
        if old is None:
            builtins.prepare_pod(obj)
        builtins.validate_name("Pod", "", name)
        errs = builtins.validate_pod_spec("Pod", "", name, obj.get("spec"), "spec")
        if errs:
            raise invalid("Pod", "", name, errs)
    elif t.kind == "Namespace":
        builtins.validate_name("Namespace", "", name, label=True)
        if old is None:
            builtins.prepare_namespace(obj)
    elif t.kind == "CustomResourceDefinition":
        admit_crd(obj)
    elif t.kind == "ConfigMap":
        builtins.validate_name("ConfigMap", "", name)
        data = obj.get("data") or {}
        size = sum(len(k) + len(str(v)) for k, v in data.items())
        if size > 1024 * 1024:
            raise invalid("ConfigMap", "", name, [("data", "Too long: must have at most 1048576 bytes")])
    return warnings


def admit_crd(crd: dict[str, Any]) -> None:
    spec = crd.get("spec") or {}
    name = crd["metadata"]["name"]
    names = spec.get("names") or {}
    errs = []
    if name != f"{names.get('plural')}.{spec.get('group')}":
        errs.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(
            (
                "spec.versions",
                "Invalid value: null: must have exactly one version marked as storage version",
            )
        )
    if sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(
            ("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    for i, v in enumerate(versions):
        errs += schema.check_structural(
            (v.get("schema") or {}).get("openAPIV3Schema"), f"spec.versions[{i}].schema.openAPIV3Schema"
        )
    if errs:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, errs)
    spec.setdefault("scope", "Namespaced")
    spec.setdefault("conversion", {"strategy": "None"})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")


# ------------------------------------------------------------ update / patch
def merge_subresource(
    t: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
) -> dict[str, Any]:
    if subresource == "status":
        merged = copy.deepcopy(old)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged
    if t.status_subresource:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    return new


def admit_status(t: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    status_schema = (t.schema.get("properties") or {}).get("status") if t.schema else None
    if "status" in obj and status_schema is not None:
        obj["status"] = schema.prune(obj["status"], status_schema)
        schema.apply_defaults(obj["status"], status_schema)
        errs = schema.validate(obj["status"], status_schema, "status")
        if errs:
            raise invalid(t.kind, t.group, obj["metadata"]["name"], errs)
    return obj


def spec_changed(t: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = (
        {"metadata", "status", "apiVersion", "kind"}
        if t.status_subresource
        else {"metadata", "apiVersion", "kind"}
    )
    return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}


def same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = ("resourceVersion", "managedFields")
    o = {**old, "metadata": {k: v for k, v in old["metadata"].items() if k not in strip}}
    n = {**new, "metadata": {k: v for k, v in new["metadata"].items() if k not in strip}}
    o.pop("apiVersion", None), o.pop("kind", None), n.pop("apiVersion", None), n.pop("kind", None)
    return o == n


def dropped_paths(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k, v in before.items():
            child = f"{path}.{k}" if path else k
            if k not in after:
                out.append(child)
            else:
                out += dropped_paths(v, after[k], child)
        return out
    if isinstance(before, list) and isinstance(after, list):
        return [
            p
            for i, (b, a) in enumerate(zip(before, after, strict=False))
            for p in dropped_paths(b, a, f"{path}[{i}]")
        ]
    return []
