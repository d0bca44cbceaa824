"""``meta.k8s.io/v1 Table`` responses: what ``kubectl get`` asks for and prints.

Custom resources get Name plus their additionalPrinterColumns (evaluated with the JSONPath
subset CRDs use); built-ins get the columns kubectl 1.32 shows for them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from tests.kube.apiserver.resources import ResourceType

_FILTER = re.compile(r'^\?\(@\.([A-Za-z0-9_.]+)\s*==\s*["\']?([^"\')]*)["\']?\)$')


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate ``.a.b``, ``.a[0]``, ``.a[*].b`` and ``.a[?(@.type=="X")].b``."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    tokens = re.findall(r"\.([A-Za-z0-9_\-]+)|\[([^\]]+)\]", path)
    values = [obj]
    for name, bracket in tokens:
        nxt: list[Any] = []
        for v in values:
            if name:
                if isinstance(v, dict) and name in v:
                    nxt.append(v[name])
            elif bracket == "*":
                nxt.extend(v if isinstance(v, list) else (v.values() if isinstance(v, dict) else []))
            elif bracket.lstrip("-").isdigit() and isinstance(v, list):
                i = int(bracket)
                if -len(v) <= i < len(v):
                    nxt.append(v[i])
            else:
                m = _FILTER.match(bracket)
                if m and isinstance(v, list):
                    field, want = m.groups()
                    for item in v:
                        got: Any = item
                        for part in field.split("."):
                            got = got.get(part) if isinstance(got, dict) else None
                        if got is not None and str(got) == want:
                            nxt.append(item)
        values = nxt
    return values


def human_age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    then = _parse_time(ts)
    if then is None:
        return "<invalid>"
    secs = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def _parse_time(ts: str) -> datetime | None:
    """RFC 3339 with or without fractions (metav1.Time and MicroTime)."""
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _cell(values: list[Any], col_type: str) -> Any:
    if not values:
        return None
    v = values[0]
    if col_type == "date" and isinstance(v, str):
        return human_age(v)
    if col_type in ("integer", "number", "boolean") and not isinstance(v, (dict, list)):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v) if len(values) == 1 else ",".join(str(x) for x in values)


def _builtin_columns(kind: str) -> list[tuple[str, str, str, int]]:
    """(name, type, how to compute, priority)."""
    return {
        "Pod": [
            ("Ready", "string", "ready", 0),
            ("Status", "string", "phase", 0),
            ("Restarts", "string", "restarts", 0),
            ("Age", "string", "age", 0),
        ],
        "Job": [
            ("Status", "string", "jobstatus", 0),
            ("Completions", "string", "completions", 0),
            ("Duration", "string", "duration", 0),
            ("Age", "string", "age", 0),
        ],
        "ConfigMap": [("Data", "integer", "datacount", 0), ("Age", "string", "age", 0)],
        "Namespace": [("Status", "string", "phase", 0), ("Age", "string", "age", 0)],
        "Event": [
            ("Last Seen", "string", "lastseen", 0),
            ("Type", "string", "type", 0),
            ("Reason", "string", "reason", 0),
            ("Object", "string", "involved", 0),
            ("Message", "string", "message", 0),
        ],
    }.get(kind, [("Age", "string", "age", 0)])


def _builtin_cell(obj: dict[str, Any], how: str) -> Any:
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    meta = obj["metadata"]
    if how == "age":
        return human_age(meta.get("creationTimestamp"))
    if how == "phase":
        if obj["kind"] == "Pod":
            if meta.get("deletionTimestamp"):
                return "Terminating"
            for cs in status.get("containerStatuses") or []:  # kubectl shows the container's reason
                term = (cs.get("state") or {}).get("terminated")
                if term and status.get("phase") in ("Succeeded", "Failed"):
                    return term.get("reason", status.get("phase"))
        return status.get("phase", "")
    if how == "ready":
        cs = status.get("containerStatuses") or []
        return f"{sum(1 for c in cs if c.get('ready'))}/{len(spec.get('containers') or [])}"
    if how == "restarts":
        return str(sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []))
    if how == "jobstatus":
        conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
        for ctype, label in (
            ("Complete", "Complete"),
            ("Failed", "Failed"),
            ("Suspended", "Suspended"),
            ("FailureTarget", "FailureTarget"),
            ("SuccessCriteriaMet", "SuccessCriteriaMet"),
        ):
            if conds.get(ctype) == "True":
                return label
        return "Running"
    if how == "completions":
        return f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}"
    if how == "duration":
        start, end = status.get("startTime"), status.get("completionTime")
        if not start:
            return ""
        return human_age(start) if not end else _span(start, end)
    if how == "datacount":
        return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    if how == "lastseen":
        return human_age(obj.get("lastTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp"))
    if how == "involved":
        inv = obj.get("involvedObject") or obj.get("regarding") or {}
        return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"
    if how in ("type", "reason"):
        return obj.get(how, "")
    if how == "message":
        return obj.get("message") or obj.get("note") or ""
    return ""


def _span(start: str, end: str) -> str:
    a, b = _parse_time(start), _parse_time(end)
    if a is None or b is None:
        return ""
    secs = int((b - a).total_seconds())
    return f"{secs}s" if secs < 120 else f"{secs // 60}m{secs % 60}s"


def to_table(
    t: ResourceType,
    items: list[dict[str, Any]],
    rv: str,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    columns = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name must be unique within a namespace.",
            "priority": 0,
        }
    ]
    rows = []
    if t.builtin:
        spec_cols = _builtin_columns(t.kind)
        columns += [
            {"name": n, "type": ty, "format": "", "description": n, "priority": p}
            for n, ty, _, p in spec_cols
        ]
    else:
        pcs = t.printer_columns or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]
        columns += [
            {
                "name": c["name"],
                "type": "string" if c.get("type") == "date" else c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": c.get("priority", 0),
            }
            for c in pcs
        ]
    for obj in items:
        if t.builtin:
            cells = [obj["metadata"]["name"]] + [
                _builtin_cell(obj, how) for _, _, how, _ in _builtin_columns(t.kind)
            ]
        else:
            cells = [obj["metadata"]["name"]] + [
                _cell(jsonpath(obj, c["jsonPath"]), c.get("type", "string")) for c in pcs
            ]
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    }
