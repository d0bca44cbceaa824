"""The CalibrationRun API: its identity (group, version, kind) and its one schema, the CRD.

The CRD's openAPIV3Schema (the package copy under ``benchcal/crd/``, written by ``make crds``
from ``crds/``) is turned into a JSON Schema, defaults are applied the way the API server applies
them, and a document is validated; a ``BadInput`` lists every problem by its field path
(unknown fields first, with a did-you-mean).
``benchcal.spec`` adds the rules the API server enforces with CEL and turns the result into
dataclasses.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import yaml

from benchcal.errors import BadInput

GROUP = "benchcal.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CalibrationRun"
PLURAL = "calibrationruns"
CRD_FILE = "calibrationruns.benchcal.dev.yaml"


def crd_text() -> str:
    return resources.files("benchcal").joinpath("crd", CRD_FILE).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def crd() -> dict[str, Any]:
    return yaml.safe_load(crd_text())


def openapi_schema() -> dict[str, Any]:
    """The served version's openAPIV3Schema, as in the CRD."""
    (version,) = [v for v in crd()["spec"]["versions"] if v["name"] == VERSION]
    return version["schema"]["openAPIV3Schema"]


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 structural schema -> JSON Schema (draft 4 keeps boolean exclusiveMinimum).

    Objects with declared properties reject unknown fields locally (the API server would prune
    them silently, hiding typos); x-kubernetes-preserve-unknown-fields subtrees stay open.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "default", "format"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft4Validator:
    schema = to_json_schema(openapi_schema())
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema)


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """Fill missing properties that declare a default, recursively (as the API server does).

    Also turns exponent-notation strings into numbers where the schema wants a number.
    """
    if isinstance(value, dict) and "properties" in node:
        for name, sub in node["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], item) for item in value]
    elif node.get("type") == "number" and isinstance(value, str) and _YAML11_FLOAT.fullmatch(value):
        return float(value)  # PyYAML (YAML 1.1) reads 1.2e15 as a string; Kubernetes reads a number
    return value


def format_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


MAX_LISTED_PROBLEMS = 20  # the message goes into the CR's status conditions: keep it bounded
UNKNOWN_FIELD, OTHER = 0, 1  # Problem.rank: unknown fields are listed first


@dataclass(frozen=True, order=True)
class Problem:
    """One schema violation: its rank, its place in the document, the path and what is wrong."""

    rank: int
    sort_key: tuple[Any, ...]
    where: str
    message: str


def _document_order(doc: Any, parts: list[Any]) -> tuple[int, ...]:
    """Where a path lies in the document as written (mappings keep the YAML's key order)."""
    key, node = [], doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            key.append(list(node).index(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key.append(part)
        else:
            break
        node = node[part]
    return tuple(key)


def _did_you_mean(name: str, allowed: list[str], parts: list[Any]) -> str:
    """As kubectl --validate=strict, plus the closest allowed name (or all of them)."""
    close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    explain = ".".join(["calibrationrun", *(str(p) for p in parts if not isinstance(p, int))])
    return f"unknown field; allowed here: {', '.join(sorted(allowed))} (`kubectl explain {explain}`)"


def _problems(error: jsonschema.ValidationError, doc: dict[str, Any]) -> list[Problem]:
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        return [
            Problem(UNKNOWN_FIELD, _document_order(doc, [*parts, name]), format_path([*parts, name]),
                    _did_you_mean(name, allowed, parts))
            for name in error.instance
            if name not in allowed
        ]  # fmt: skip
    message = error.message
    if error.validator in ("minItems", "maxItems") and isinstance(error.instance, list):
        # jsonschema's "[...] is too short" would repeat the whole list (every checkpoint)
        bound = "fewer than the {} required" if error.validator == "minItems" else "more than the {} allowed"
        message = f"{len(error.instance)} item(s), {bound.format(error.validator_value)}"
    return [Problem(OTHER, _document_order(doc, parts), format_path(parts), message)]


def schema_problems(doc: dict[str, Any]) -> list[Problem]:
    """Every CRD-schema violation of a (defaulted) document: unknown fields first (a typo there
    also causes the "required" errors after it), then the rest, each group in document order."""
    return sorted({p for error in _validator().iter_errors(doc) for p in _problems(error, doc)})


def problems_message(problems: list[Problem]) -> str:
    """One problem on one line; several as a numbered list (at most MAX_LISTED_PROBLEMS)."""
    if len(problems) == 1:
        return f"{problems[0].where}: {problems[0].message}"
    lines = [f"{len(problems)} problems in the CalibrationRun:"]
    lines += [f"  {i}. {p.where}: {p.message}" for i, p in enumerate(problems[:MAX_LISTED_PROBLEMS], 1)]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


def validate_document(doc: Any) -> dict[str, Any]:
    """Schema-validate a CalibrationRun document; returns a defaulted copy.

    BadInput lists every problem (unknown fields first, with a did-you-mean), not just the first.
    """
    if not isinstance(doc, dict):
        raise BadInput("CalibrationRun: expected a mapping with apiVersion, kind, metadata and spec")
    if doc.get("apiVersion", API_VERSION) != API_VERSION or doc.get("kind", KIND) != KIND:
        raise BadInput(
            f"apiVersion/kind: expected {API_VERSION} {KIND}, got {doc.get('apiVersion')} {doc.get('kind')}"
        )
    doc = apply_defaults(openapi_schema(), copy.deepcopy(doc))
    problems = schema_problems(doc)
    if problems:
        raise BadInput(problems_message(problems))
    return doc
