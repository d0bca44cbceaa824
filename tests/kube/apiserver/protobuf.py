"""Decode the few protobuf request bodies kubectl sends for reviews and TokenRequests.

kubectl's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``: the
``k8s\\x00`` magic, then a ``runtime.Unknown`` (typeMeta = 1 {apiVersion = 1, kind = 2},
raw = 2). ``kubectl auth can-i`` (SelfSubjectAccessReview / SelfSubjectRulesReview),
``kubectl auth whoami`` (SelfSubjectReview) and ``kubectl create token`` (TokenRequest) post
such bodies; their fields are decoded here by the field numbers of k8s.io/api v0.32's
``generated.proto``. Other protobuf bodies stay 415 (the server answers JSON either way).
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
# message -> {field number: (json name, kind)}; kind: "str", "int", "strs" or a message name
Schema = dict[int, tuple[str, str]]
MESSAGES: dict[str, Schema] = {
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "ResourceAttributes": {
        1: ("namespace", "str"),
        2: ("verb", "str"),
        3: ("group", "str"),
        4: ("version", "str"),
        5: ("resource", "str"),
        6: ("subresource", "str"),
        7: ("name", "str"),
    },
    "NonResourceAttributes": {1: ("path", "str"), 2: ("verb", "str")},
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
        3: ("user", "str"),
        4: ("groups", "strs"),
        6: ("uid", "str"),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "str")},
    "BoundObjectReference": {
        1: ("kind", "str"),
        2: ("apiVersion", "str"),
        3: ("name", "str"),
        4: ("uid", "str"),
    },
    "TokenRequestSpec": {
        1: ("audiences", "strs"),
        3: ("boundObjectRef", "BoundObjectReference"),
        4: ("expirationSeconds", "int"),
    },
    "SelfSubjectAccessReview": {2: ("spec", "SelfSubjectAccessReviewSpec")},
    "SubjectAccessReview": {2: ("spec", "SubjectAccessReviewSpec")},
    "SelfSubjectRulesReview": {2: ("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectReview": {},
    "TokenRequest": {2: ("spec", "TokenRequestSpec")},
}


KINDS = {
    "SelfSubjectAccessReview",
    "SubjectAccessReview",
    "SelfSubjectRulesReview",
    "SelfSubjectReview",
    "TokenRequest",
}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def decode(data: bytes, message: str) -> dict[str, Any]:
    schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, _wire, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "str":
            out[name] = value.decode()
        elif kind in ("bytes", "int"):
            out[name] = value
        elif kind == "strs":
            out.setdefault(name, []).append(value.decode())
        else:
            out[name] = decode(value, kind)
    return out


def decode_envelope(body: bytes) -> dict[str, Any] | None:
    """The object as JSON-like data, or None when it is not a kind this module knows."""
    if not body.startswith(MAGIC):
        return None
    unknown = decode(body[len(MAGIC) :], "Unknown")
    meta = unknown.get("typeMeta") or {}
    kind = meta.get("kind", "")
    if kind not in KINDS:
        return None
    obj = decode(unknown.get("raw", b""), kind)
    return {"apiVersion": meta.get("apiVersion", ""), "kind": kind, **obj}
