"""Structural OpenAPI v3 schemas of CRDs: pruning, defaulting and validation.

Order as in the real server: prune unknown fields, apply defaults, then validate.
``x-kubernetes-validations`` (CEL) rules are NOT evaluated (documented in docs/testing.md).
Error strings follow the real server's wording so kubectl shows familiar messages.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

Schema = dict[str, Any]


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# ---------------------------------------------------------------- pruning


def prune(value: Any, schema: Schema | None, *, root: bool = False) -> Any:
    """Drop fields the schema does not declare (unless it preserves unknown fields)."""
    if schema is None or not isinstance(value, (dict, list)):
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [prune(v, items) for v in value] if isinstance(items, dict) else value
    props = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = root or schema.get("x-kubernetes-embedded-resource") is True
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if embedded and key in ("apiVersion", "kind"):
            out[key] = sub
        elif embedded and key == "metadata":
            out[key] = sub if root else _prune_embedded_metadata(sub)
        elif key in props:
            out[key] = prune(sub, props[key])
        elif isinstance(additional, dict):
            out[key] = prune(sub, additional)
        elif additional is True or preserve:
            out[key] = sub
    return out


def _prune_embedded_metadata(meta: Any) -> Any:
    keep = ("name", "namespace", "labels", "annotations", "generateName", "finalizers")
    return {k: v for k, v in meta.items() if k in keep} if isinstance(meta, dict) else meta


# ---------------------------------------------------------------- defaulting


def apply_defaults(value: Any, schema: Schema | None) -> Any:
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in list(value):
                if key not in props:
                    value[key] = apply_defaults(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


# ---------------------------------------------------------------- validation


def _type_ok(value: Any, schema: Schema) -> bool:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    if t is None:
        return True
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate(value: Any, schema: Schema | None, path: str = "") -> list[tuple[str, str]]:
    """Return (field path, message) pairs; empty when valid."""
    if schema is None:
        return []
    errors: list[tuple[str, str]] = []
    where = path or "<root>"
    if value is None:
        if schema.get("nullable"):
            return []
        return [
            (
                where,
                f'Invalid value: "null": {where} in body must be of type {schema.get("type", "object")}: '
                '"null"',
            )
        ]
    if not _type_ok(value, schema):
        want = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        return [
            (
                where,
                f'Invalid value: "{_json_type(value)}": {where} in body must be of type {want}: '
                f'"{_json_type(value)}"',
            )
        ]
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_fmt(v) for v in schema["enum"])
        errors.append((where, f"Unsupported value: {_fmt(value)}: supported values: {supported}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            lo = schema["minimum"]
            if value < lo or (schema.get("exclusiveMinimum") is True and value == lo):
                op = "greater than" if schema.get("exclusiveMinimum") is True else "greater than or equal to"
                errors.append(
                    (where, f"Invalid value: {_fmt(value)}: {where} in body should be {op} {_fmt(lo)}")
                )
        if "maximum" in schema:
            hi = schema["maximum"]
            if value > hi or (schema.get("exclusiveMaximum") is True and value == hi):
                op = "less than" if schema.get("exclusiveMaximum") is True else "less than or equal to"
                errors.append(
                    (where, f"Invalid value: {_fmt(value)}: {where} in body should be {op} {_fmt(hi)}")
                )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append((where, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                (
                    where,
                    f"Invalid value: {_fmt(value)}: {where} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(
                (where, f"Invalid value: {_fmt(value)}: {where} in body should match '{schema['pattern']}'")
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                (
                    where,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append((where, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        if schema.get("uniqueItems"):
            seen = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(seen)) != len(seen):
                errors.append((where, f"Duplicate value: {where} in body shouldn't contain duplicates"))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errors += validate(item, items, f"{path}[{i}]")
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen_keys = [tuple(v.get(k) for k in keys) for v in value if isinstance(v, dict)]
            for i, key in enumerate(seen_keys):
                if key in seen_keys[:i]:
                    errors.append(
                        (f"{path}[{i}]", f"Duplicate value: {_fmt(dict(zip(keys, key, strict=False)))}")
                    )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                errors.append((f"{path}.{req}" if path else req, "Required value"))
        for key, sub in value.items():
            child = f"{path}.{key}" if path else key
            if key in props:
                errors += validate(sub, props[key], child)
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(sub, schema["additionalProperties"], child)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            errors.append(
                (
                    where,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minProperties']} properties",
                )
            )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(
                (where, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items")
            )
    errors += _combinators(value, schema, path, where)
    return errors


def _combinators(value: Any, schema: Schema, path: str, where: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    # Value validations inside oneOf/anyOf/allOf/not; structural schemas forbid types there,
    # so the type check is skipped by validating against a copy without 'type'.
    for sub in schema.get("allOf") or []:
        errors += validate(value, sub, path)
    if schema.get("anyOf") and not any(not validate(value, s, path) for s in schema["anyOf"]):
        errors.append(
            (
                where,
                f"Invalid value: {_fmt_short(value)}: {where} in body must validate at least one "
                "schema (anyOf)",
            )
        )
    if schema.get("oneOf"):
        matches = sum(1 for s in schema["oneOf"] if not validate(value, s, path))
        if matches != 1:
            errors.append(
                (
                    where,
                    f"Invalid value: {_fmt_short(value)}: {where} in body must validate one and only "
                    "one schema (oneOf)",
                )
            )
    if isinstance(schema.get("not"), dict) and not validate(value, schema["not"], path):
        errors.append(
            (
                where,
                f"Invalid value: {_fmt_short(value)}: {where} in body should not validate the schema (not)",
            )
        )
    return errors


def _fmt_short(value: Any) -> str:
    return f'"{_json_type(value)}"' if isinstance(value, (dict, list)) else _fmt(value)


def check_structural(
    schema: Schema | None, path: str = "spec.validation.openAPIV3Schema"
) -> list[tuple[str, str]]:
    """The few structural-schema rules that catch real mistakes in CRD manifests."""
    if schema is None:
        return [(path, "Required value: schemas are required")]
    errors = []
    if (
        "type" not in schema
        and not schema.get("x-kubernetes-int-or-string")
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        errors.append((f"{path}.type", "Required value: must not be empty for specified object fields"))
    for key, sub in (schema.get("properties") or {}).items():
        errors += check_structural(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        errors += check_structural(schema["items"], f"{path}.items")
    return errors
