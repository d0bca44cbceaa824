"""The CalibrationRun API: its identity (group, version, kind) and its one schema, the CRD.

The CRD's openAPIV3Schema (the package copy under ``benchcal/crd/``, written by ``make crds``
from ``crds/``) is turned into a JSON Schema, defaults are applied the way the API server applies
them, and a document is validated; every error is a ``BadInput`` naming the field path.
``benchcal.spec`` adds the rules the API server enforces with CEL and turns the result into
dataclasses.
"""

from __future__ import annotations

import copy
import functools
import re
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


def validate_document(doc: Any) -> dict[str, Any]:
    """Schema-validate a CalibrationRun document; returns a defaulted copy."""
    if not isinstance(doc, dict):
        raise BadInput("CalibrationRun: expected a mapping with apiVersion, kind, metadata and spec")
    if doc.get("apiVersion", API_VERSION) != API_VERSION or doc.get("kind", KIND) != KIND:
        raise BadInput(
            f"apiVersion/kind: expected {API_VERSION} {KIND}, got {doc.get('apiVersion')} {doc.get('kind')}"
        )
    doc = apply_defaults(openapi_schema(), copy.deepcopy(doc))
    errors = sorted(
        _validator().iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.path)))
    )
    if errors:
        first = errors[0]
        where = format_path(first.absolute_path)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise BadInput(f"{where}: {_explain(first)}{more}")
    return doc


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"{error.message}; see docs/crd.md or `kubectl explain calibrationrun.{_explain_path(error)}`"
    return error.message


def _explain_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path if not isinstance(p, int)) or "spec"
