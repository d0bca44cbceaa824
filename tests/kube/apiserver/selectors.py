"""Label and field selectors, parsed the way the API server parses them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``.
Field selectors: ``metadata.name``, ``metadata.namespace`` and a few per-kind fields with ``=``,
``==``, ``!=`` (the real server only supports a fixed set of fields per kind too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.kube.apiserver.errors import ApiError

Requirement = Callable[[dict[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_label_selector(text: str | None) -> Requirement:
    reqs: list[Requirement] = []
    for part in _split_top(text or ""):
        m = _EQ_RE.match(part)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                reqs.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                reqs.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        m = _SET_RE.match(part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        neg, key, op, values = m.groups()
        if op:
            vals = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda labels, k=key, vs=vals: labels.get(k) in vs)
            else:
                reqs.append(lambda labels, k=key, vs=vals: labels.get(k) not in vs)
        elif neg:
            reqs.append(lambda labels, k=key: k not in labels)
        else:
            reqs.append(lambda labels, k=key: k in labels)
    return lambda labels: all(r(labels) for r in reqs)


def _field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return str(cur).lower()
    return str(cur)


# Field selectors the real server accepts beyond metadata.name/namespace, per kind.
SUPPORTED_FIELDS: dict[str, set[str]] = {
    "Pod": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Event": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Job": {"status.successful"},
    "Namespace": {"status.phase"},
    "Secret": {"type"},
}


def parse_field_selector(text: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    reqs: list[Callable[[dict[str, Any]], bool]] = []
    allowed = {"metadata.name", "metadata.namespace"} | SUPPORTED_FIELDS.get(kind, set())
    for part in _split_top(text or ""):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {part!r}; can't understand it")
        key, op, value = m.groups()
        if key not in allowed:
            raise ApiError(400, "BadRequest", f"field label not supported: {key}")
        if op == "!=":
            reqs.append(lambda o, k=key, v=value: _field_value(o, k) != v)
        else:
            reqs.append(lambda o, k=key, v=value: _field_value(o, k) == v)
    return lambda obj: all(r(obj) for r in reqs)
