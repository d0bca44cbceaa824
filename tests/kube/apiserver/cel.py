"""CRD validation rules (``x-kubernetes-validations``), evaluated with cel-python.

Semantics kept from kube-apiserver (apiextensions-apiserver ``pkg/apiserver/schema/cel``):

- values are typed by the schema: ``number`` fields are doubles even when the JSON holds
  an integer, ``integer`` fields ints; at the root ``self.metadata`` has only ``name`` and
  ``generateName``;
- equality on ``x-kubernetes-list-type: set`` and ``map`` lists ignores element order (map
  lists compare element by key), as the Kubernetes CEL docs state;
- transition rules (those naming ``oldSelf``) run only on update and only where the old value
  correlates: object properties by name, ``map`` list items by their keys (never ``atomic`` or
  ``set`` items);
- ratcheting (on by default since 1.30): on update, a subtree equal to its correlated old
  value is not validated again;
- a failed rule is ``<path>[.fieldPath]: Invalid value: "<schema type>": <message>`` (or
  ``Forbidden``/``Required``/``Duplicate`` per ``reason``); without ``message`` it is
  ``failed rule: <rule>``; ``messageExpression`` is evaluated.

Where cel-python differs from cel-go (docs/testing.md lists these too): no compile-time type
check against the schema and no cost estimation (the real server refuses a CRD whose rule
does not type-check or exceeds the cost budget; here only syntax errors are refused); none of
the Kubernetes CEL libraries (``quantity``, ``url``, ``isSorted``, ``indexOf`` lists, optional
types); ``matches`` uses Python ``re`` instead of RE2.
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any

Schema = dict[str, Any]
Errors = list[tuple[str, str]]
_OLD_SELF = re.compile(r"\boldSelf\b")


def _celpy() -> Any:
    import celpy  # a test dependency (pyproject: dev extra)

    return celpy


@functools.lru_cache(maxsize=512)
def _program(expr: str) -> Any:
    celpy = _celpy()
    env = celpy.Environment()
    return env.program(env.compile(expr))


def compile_error(expr: str) -> str | None:
    """The parser's message when ``expr`` is not valid CEL, else None."""
    try:
        _program(expr)
    except Exception as exc:
        return str(exc).strip()
    return None


# ------------------------------------------------------------ values typed by the schema
def _list_types() -> tuple[type, type]:
    celtypes = _celpy().celtypes

    class SetList(celtypes.ListType):
        """``x-kubernetes-list-type: set``: equal when they hold the same elements, in any order."""

        def __eq__(self, other: Any) -> bool:
            if not isinstance(other, list) or len(self) != len(other):
                return False if isinstance(other, list) else super().__eq__(other)
            return all(any(a == b for b in other) for a in self) and all(
                any(b == a for a in self) for b in other
            )

        def __ne__(self, other: Any) -> bool:
            return not self.__eq__(other)

        __hash__ = None  # type: ignore[assignment]

    class MapList(celtypes.ListType):
        """``x-kubernetes-list-type: map``: equal when each key maps to an equal element."""

        keys: tuple[str, ...] = ()

        def _key(self, item: Any) -> tuple[Any, ...]:
            return tuple(str(item.get(celtypes.StringType(k))) for k in self.keys)

        def __eq__(self, other: Any) -> bool:
            if not isinstance(other, list) or len(self) != len(other):
                return False if isinstance(other, list) else super().__eq__(other)
            mine = {self._key(i): i for i in self}
            theirs = {self._key(i): i for i in other}
            return mine.keys() == theirs.keys() and all(mine[k] == theirs[k] for k in mine)

        def __ne__(self, other: Any) -> bool:
            return not self.__eq__(other)

        __hash__ = None  # type: ignore[assignment]

    return SetList, MapList


_SET_LIST: type | None = None
_MAP_LIST: type | None = None


def to_cel(value: Any, schema: Schema | None) -> Any:
    global _SET_LIST, _MAP_LIST
    celpy = _celpy()
    t = celpy.celtypes
    if schema is None or value is None:
        return celpy.json_to_cel(value)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub = props.get(k) if k in props else (extra if isinstance(extra, dict) else None)
            out[t.StringType(k)] = to_cel(v, sub)
        return t.MapType(out)
    if isinstance(value, list):
        items = [to_cel(v, schema.get("items")) for v in value]
        kind = schema.get("x-kubernetes-list-type")
        if kind in ("set", "map"):
            if _SET_LIST is None:
                _SET_LIST, _MAP_LIST = _list_types()
            if kind == "set":
                return _SET_LIST(items)
            out_list = _MAP_LIST(items)
            out_list.keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
            return out_list
        return t.ListType(items)
    if schema.get("type") == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return t.DoubleType(float(value))
    return celpy.json_to_cel(value)


# ------------------------------------------------------------ walking the schema
MISSING = object()  # "no correlated old value" (create, or an uncorrelatable list item)


def _type_name(schema: Schema) -> str:
    return str(schema.get("type") or "")


def _failure(rule: dict[str, Any], path: str, schema: Schema, message: str) -> tuple[str, str]:
    field = path + (rule.get("fieldPath") or "") if path or rule.get("fieldPath") else "<nil>"
    field = field.lstrip(".") or "<nil>"
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        return field, f"Forbidden: {message}"
    if reason == "FieldValueRequired":
        return field, f"Required value: {message}"
    if reason == "FieldValueDuplicate":
        return field, f'Duplicate value: "{_type_name(schema)}"'
    return field, f'Invalid value: "{_type_name(schema)}": {message}'


def _check_rules(schema: Schema, value: Any, old: Any, path: str) -> Errors:
    errors: Errors = []
    for rule in schema.get("x-kubernetes-validations") or []:
        expr = rule["rule"]
        transition = bool(_OLD_SELF.search(expr))
        if transition and old is MISSING:
            continue
        activation = {"self": to_cel(value, schema)}
        if transition:
            activation["oldSelf"] = to_cel(old, schema)
        try:
            ok = bool(_program(expr).evaluate(activation))
        except Exception as exc:  # a runtime error is a failed validation, as on the real server
            errors.append(_failure(rule, path, schema, f"rule evaluation error: {exc}"))
            continue
        if ok:
            continue
        message = rule.get("message") or f"failed rule: {expr}"
        if rule.get("messageExpression"):
            with contextlib.suppress(Exception):  # the real server falls back to message as well
                message = str(_program(rule["messageExpression"]).evaluate(activation))
        errors.append(_failure(rule, path, schema, message))
    return errors


def validate(schema: Schema | None, value: Any, old: Any = MISSING, path: str = "") -> Errors:
    """CEL errors for ``value`` (and its correlated ``old``; omit it on create)."""
    if schema is None or value is None:
        return []
    if old is not MISSING and old == value:
        return []  # ratcheting: an unchanged subtree is not validated again
    errors = _check_rules(schema, value, old, path)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub_value in value.items():
            sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
            if sub is None:
                continue
            sub_old = old.get(key, MISSING) if isinstance(old, dict) else MISSING
            child = f"{path}.{key}" if path else key
            errors += validate(sub, sub_value, sub_old, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") or []
        by_key = {}
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
            by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            item_old = (
                by_key.get(tuple(item.get(k) for k in keys), MISSING)
                if by_key and isinstance(item, dict)
                else MISSING
            )
            errors += validate(items, item, item_old, f"{path}[{i}]")
    return errors


@functools.lru_cache(maxsize=64)
def _has_rules(schema_json: str) -> bool:
    return "x-kubernetes-validations" in schema_json


def has_rules(schema: Schema | None) -> bool:
    """Whether any node of the schema carries CEL rules."""
    import json

    return schema is not None and _has_rules(json.dumps(schema, sort_keys=True))


def root_view(obj: dict[str, Any]) -> dict[str, Any]:
    """What ``self`` is at the root: the object with metadata cut to name and generateName."""
    meta = obj.get("metadata") or {}
    view = {k: v for k, v in obj.items() if k != "metadata"}
    view["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return view


def rule_errors(schema: Schema | None, path: str = "") -> Errors:
    """Syntax errors in a CRD schema's rules (checked when the CRD is written)."""
    if not isinstance(schema, dict):
        return []
    errors: Errors = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        for key in ("rule", "messageExpression"):
            if rule.get(key):
                problem = compile_error(rule[key])
                if problem:
                    errors.append(
                        (
                            f"{path}.x-kubernetes-validations[{i}].{key}",
                            f"Invalid value: {rule[key]!r}: compilation failed: {problem}",
                        )
                    )
    for key, sub in (schema.get("properties") or {}).items():
        errors += rule_errors(sub, f"{path}.properties[{key}]")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            errors += rule_errors(schema[key], f"{path}.{key}")
    return errors
