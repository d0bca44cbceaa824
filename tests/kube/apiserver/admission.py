"""Admission: what the server does to an object before storing it.

Defaults and validation for built-in kinds and CRD schemas (prune, default, validate, strict
field validation), CRD manifest checks, and the status-subresource split between spec and
status writes. Pure functions of the type and the objects.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kube.apiserver import builtins, cel, plugins, schema, validation
from tests.kube.apiserver.errors import ApiError, cause_type, invalid
from tests.kube.apiserver.resources import ResourceType

NAME_RULES = {
    "Namespace": "label",
    "Role": "path",
    "ClusterRole": "path",
    "RoleBinding": "path",
    "ClusterRoleBinding": "path",
}


def admit(
    t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
) -> list[str]:
    """Defaults, then every validation error of the object in one 422 (as the real server)."""
    warnings: list[str] = []
    name = obj["metadata"]["name"]
    errs = validation.object_meta(obj["metadata"], name_rule=NAME_RULES.get(t.kind, "subdomain"))
    if not t.builtin and t.schema is not None:
        warnings += _admit_custom(t, obj, old, field_validation, errs)
    elif t.kind == "Job":
        if old is None:
            builtins.prepare_job(obj, obj["metadata"]["uid"])
        errs += builtins.job_errors(obj)
        if old is not None:
            errs += builtins.job_update_errors(old, obj)
    elif t.kind == "Pod":
        if old is None:
            builtins.prepare_pod(obj)
        errs += validation.pod_spec(obj.get("spec"), "spec")
    elif t.kind == "Namespace":
        if old is None:
            builtins.prepare_namespace(obj)
        errs += plugins.namespace_label_errors(obj)
    elif t.kind == "CustomResourceDefinition":
        admit_crd(obj)
    elif t.kind == "ConfigMap":
        data = obj.get("data") or {}
        size = sum(len(k) + len(str(v)) for k, v in data.items())
        if size > 1024 * 1024:
            errs.append(("data", "Too long: must have at most 1048576 bytes"))
    elif t.kind in ("RoleBinding", "ClusterRoleBinding"):
        errs += builtins.binding_errors(obj, old, t.kind)
    elif t.kind in ("Role", "ClusterRole"):
        errs += builtins.role_errors(obj, t.kind)
    if errs:
        raise invalid(t.kind, t.group, name, errs)
    return warnings


def _admit_custom(
    t: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    field_validation: str,
    errs: list[tuple[str, str]],
) -> list[str]:
    """A custom resource: prune, strict-field check, default, schema validation, CEL rules."""
    assert t.schema is not None
    warnings: list[str] = []
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
    required = [
        r
        for r in t.schema.get("required", [])
        if r not in ("apiVersion", "kind", "metadata") and not (t.status_subresource and r == "status")
    ]
    errs += schema.validate(body, {**t.schema, "required": required})
    errs += cel_errors(
        t.schema, cel_view(t, obj), cel_view(t, old) if old is not None else cel.MISSING, "", errs
    )
    return warnings


BLOCKING = {
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
}


def cel_errors(
    schema_: Any, value: Any, old: Any, path: str, errs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """CEL rules, unless a blocking schema error means the object lacks the shape they assume."""
    if not cel.has_rules(schema_):
        return []  # no CEL validator at all for such a schema (upstream: NewValidator returns nil)
    if any(cause_type(m) in BLOCKING for _, m in errs):
        return [
            (
                "<nil>",
                'Invalid value: "null": some validation rules were not checked because the object was '
                "invalid; correct the existing errors to complete validation",
            )
        ]
    return cel.validate(schema_, value, old, path)


def cel_view(t: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    view = cel.root_view(obj)
    view.pop("apiVersion", None), view.pop("kind", None)
    if t.status_subresource:
        view.pop("status", None)
    return view


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
        root = (v.get("schema") or {}).get("openAPIV3Schema")
        errs += schema.check_structural(root, f"spec.versions[{i}].schema.openAPIV3Schema")
        errs += cel.rule_errors(root, f"spec.versions[{i}].schema.openAPIV3Schema")
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


def admit_status(t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    status_schema = (t.schema.get("properties") or {}).get("status") if t.schema else None
    old_status = (old or {}).get("status", cel.MISSING)
    if "status" in obj and status_schema is not None:
        obj["status"] = schema.prune(obj["status"], status_schema)
        schema.apply_defaults(obj["status"], status_schema)
        errs = schema.validate(obj["status"], status_schema, "status")
        errs += cel_errors(status_schema, obj["status"], old_status, "status", errs)
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
