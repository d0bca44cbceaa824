"""The three patch formats: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge.

Strategic merge is what ``kubectl apply`` (client-side, the 1.32 default) sends for built-in
kinds. Lists merge by the patchMergeKey that the Kubernetes Go types declare; the table below
covers the fields our Jobs/Pods/ConfigMaps use. Other lists are replaced, as for unknown fields.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kube.apiserver.errors import ApiError

# field name -> merge key for lists that strategic merge merges by key (from the Go struct tags).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
}
# lists of scalars merged as sets (patchStrategy:"merge").
MERGE_PRIMITIVE_LISTS = {"finalizers"}


def json_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"json patch path {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: "
                f"jsonpatch path {path} does not exist",
            )
    return cur


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ApiError(422, "Invalid", f"jsonpatch remove operation does not apply: doc is missing path: {path}")


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool = False) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(
                422, "Invalid", f"jsonpatch replace operation does not apply: doc is missing key: {path}"
            )
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise ApiError(422, "Invalid", f"jsonpatch: index out of range in {path}")
    else:
        raise ApiError(422, "Invalid", f"jsonpatch: cannot add at {path}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        if kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed",
                )
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path)
        elif kind == "replace":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path, replace=True)
        elif kind in ("move", "copy"):
            src = _pointer(op["from"])
            value = (
                _remove(doc, src, op["from"])
                if kind == "move"
                else copy.deepcopy(_walk(doc, src, op["from"]))
            )
            doc = _add(doc, parts, value, path)
        else:
            raise ApiError(400, "BadRequest", f"unknown json patch op {kind!r}")
    return doc


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(key: str, current: Any, patch: list[Any]) -> list[Any]:
    current = current if isinstance(current, list) else []
    if key in MERGE_PRIMITIVE_LISTS:
        out = list(current)
        out.extend(v for v in patch if v not in out)
        return out
    merge_key = MERGE_KEYS.get(key)
    if not merge_key or not all(isinstance(p, dict) for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if p.get("$patch") != "replace"]
    out = [copy.deepcopy(c) for c in current]
    for item in patch:
        idx = next(
            (i for i, c in enumerate(out) if isinstance(c, dict) and c.get(merge_key) == item.get(merge_key)),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(strategic_merge({}, item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out
