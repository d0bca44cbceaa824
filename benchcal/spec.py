"""CalibrationRun parsing: the one schema for the operator and for ``benchcal run``.

The CRD's openAPIV3Schema (the copy under ``benchcal/crd/``) is turned into a JSON Schema,
defaults are applied the way the API server applies them, and the document is validated;
then the rules the API server enforces with CEL (and a few it cannot know, such as unknown
benchmark names) are checked in Python. Every error is a ``BadInput`` naming the field path,
e.g. ``spec.checkpoints[2].flops: ...``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
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

# Variables the operator sets on evaluator pods; a CalibrationRun may not override them.
PROTECTED_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "HF_TOKEN",
    "TRUST_REMOTE_CODE",
    "HF_DATASETS_TRUST_REMOTE_CODE",
)
MODEL_SOURCES = ("path", "pvc", "hub", "uri", "builtin")


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class ModelSource:
    """Exactly one way to find a checkpoint's weights."""

    kind: str  # one of MODEL_SOURCES
    path: str = ""  # kind=path: a path; kind=pvc: path inside the claim
    claim_name: str = ""
    hub_id: str = ""
    revision: str = ""
    token_secret: SecretRef | None = None
    uri: str = ""
    builtin: str = ""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    model: ModelSource
    flops: float  # resolved: given, or 6 * params * tokens
    params: float | None = None
    tokens: float | None = None


@dataclass(frozen=True)
class BenchmarkSelection:
    name: str
    shots: tuple[int, ...]


@dataclass(frozen=True)
class Suite:
    benchmarks: tuple[BenchmarkSelection, ...]  # resolved (preset expanded)
    shots: tuple[int, ...]
    preset: str = ""
    limit: int | None = None
    seed: int = 1234


@dataclass(frozen=True)
class ResultsLocation:
    kind: str  # path | pvc | uri
    path: str = ""
    claim_name: str = ""
    uri: str = ""


@dataclass(frozen=True)
class Classification:
    alpha: float = 0.05
    strict: bool = False


@dataclass(frozen=True)
class CalibrationRun:
    name: str
    namespace: str
    checkpoints: tuple[Checkpoint, ...]
    suite: Suite
    evaluator: dict[str, Any]  # the allow-listed pod settings, defaults applied (camelCase keys)
    classification: Classification
    results: ResultsLocation | None
    queue_name: str = ""
    suspend: bool = False
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def checkpoint(self, name: str) -> Checkpoint:
        for ckpt in self.checkpoints:
            if ckpt.name == name:
                return ckpt
        raise KeyError(name)


# ---- the schema ----------------------------------------------------------------------------------


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
    return [Problem(OTHER, _document_order(doc, parts), format_path(parts), error.message)]


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


# ---- semantic checks (the CEL rules, plus what only the registry knows) --------------------------


def _exactly_one(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    present = [k for k in keys if k in obj]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        raise BadInput(f"{where}: set exactly one of {', '.join(keys)} (got {got})")
    return present[0]


def _pvc_subpath(pvc: dict[str, Any], where: str) -> str:
    """A path inside a claim: relative, never escaping it (it is joined under the mount point)."""
    sub = pvc.get("path", "")
    if sub.startswith("/") or ".." in sub:
        raise BadInput(f"{where}.pvc.path: must be relative and must not contain '..', got {sub!r}")
    return sub


def _model(raw: dict[str, Any], where: str, base_dir: Path | None) -> ModelSource:
    kind = _exactly_one(raw, MODEL_SOURCES, where)
    if kind == "path":
        return ModelSource("path", path=_resolve(raw["path"], base_dir))
    if kind == "pvc":
        return ModelSource("pvc", path=_pvc_subpath(raw["pvc"], where), claim_name=raw["pvc"]["claimName"])
    if kind == "hub":
        hub = raw["hub"]
        secret = hub.get("tokenSecret")
        return ModelSource(
            "hub",
            hub_id=hub["id"],
            revision=hub.get("revision", ""),
            token_secret=SecretRef(secret["name"], secret["key"]) if secret else None,
        )
    if kind == "uri":
        return ModelSource("uri", uri=raw["uri"])
    return ModelSource("builtin", builtin=raw["builtin"])


def _resolve(path: str, base_dir: Path | None) -> str:
    if base_dir is None or Path(path).is_absolute() or "://" in path:
        return path
    return str((Path(base_dir) / path).resolve())


def _checkpoint(raw: dict[str, Any], where: str, base_dir: Path | None) -> Checkpoint:
    has_pt = ("params" in raw, "tokens" in raw)
    if "flops" in raw and any(has_pt):
        raise BadInput(
            f"{where}: set either flops, or params and tokens (flops = 6 * params * tokens), not both"
        )
    if "flops" not in raw and not all(has_pt):
        missing = "tokens" if has_pt[0] else "params" if has_pt[1] else "flops (or params and tokens)"
        raise BadInput(f"{where}: missing {missing}; flops = 6 * params * tokens")
    flops = float(raw["flops"]) if "flops" in raw else 6.0 * float(raw["params"]) * float(raw["tokens"])
    return Checkpoint(
        name=raw["name"],
        model=_model(raw["model"], f"{where}.model", base_dir),
        flops=flops,
        params=float(raw["params"]) if "params" in raw else None,
        tokens=float(raw["tokens"]) if "tokens" in raw else None,
    )


def _suite(raw: dict[str, Any]) -> Suite:
    from benchcal.tasks import registry  # the registry knows benchmark names and presets

    shots = tuple(sorted(set(raw["shots"])))
    listed = raw.get("benchmarks") or []
    if ("preset" in raw) == bool(listed):
        raise BadInput("spec.suite: set exactly one of suite.preset or a non-empty suite.benchmarks")
    if "preset" in raw:
        try:
            names = [t.name for t in registry.resolve_tasks(f"preset:{raw['preset']}")]
        except BadInput as exc:
            raise BadInput(f"spec.suite.preset: {exc}") from None
        selections = tuple(BenchmarkSelection(n, shots) for n in names)
    else:
        chosen = []
        for i, item in enumerate(listed):
            try:
                registry.get_task(item["name"])
            except BadInput as exc:
                raise BadInput(f"spec.suite.benchmarks[{i}].name: {exc}") from None
            chosen.append(BenchmarkSelection(item["name"], tuple(sorted(set(item.get("shots", shots))))))
        selections = tuple(chosen)
    return Suite(selections, shots, raw.get("preset", ""), raw.get("limit"), int(raw["seed"]))


def _results(raw: dict[str, Any] | None, base_dir: Path | None) -> ResultsLocation | None:
    if raw is None:
        return None
    kind = _exactly_one(raw, ("path", "pvc", "uri"), "spec.results")
    if kind == "path":
        return ResultsLocation("path", path=_resolve(raw["path"], base_dir))
    if kind == "pvc":
        sub = _pvc_subpath(raw["pvc"], "spec.results")
        return ResultsLocation("pvc", path=sub, claim_name=raw["pvc"]["claimName"])
    return ResultsLocation("uri", uri=raw["uri"])


def _check_evaluator(ev: dict[str, Any]) -> None:
    for i, var in enumerate(ev.get("env", [])):
        if var["name"] in PROTECTED_ENV or var["name"].startswith("BENCHCAL_"):
            raise BadInput(
                f"spec.evaluator.env[{i}].name: {var['name']} is set by the operator and cannot be overridden"
            )
    names = {v["name"] for v in ev.get("volumes", [])}
    for i, vol in enumerate(ev.get("volumes", [])):
        if vol["name"].startswith("benchcal-"):
            raise BadInput(
                f"spec.evaluator.volumes[{i}].name: the prefix 'benchcal-' is reserved for the operator"
            )
    for i, mount in enumerate(ev.get("volumeMounts", [])):
        if mount["name"] not in names:
            raise BadInput(
                f"spec.evaluator.volumeMounts[{i}].name: no volume {mount['name']!r} in spec.evaluator.volumes"
            )


def parse_run(doc: dict[str, Any], *, base_dir: str | Path | None = None) -> CalibrationRun:
    """Validate a CalibrationRun document (CRD schema + semantic rules) and resolve it.

    ``base_dir`` resolves relative local paths (model.path, results.path) for ``benchcal run``.
    """
    doc = validate_document(doc)
    meta = doc.get("metadata") or {}
    name = meta.get("name", "")
    if not isinstance(name, str) or not name:
        raise BadInput("metadata.name: required (a DNS label, e.g. tiny-demo)")
    if len(name) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        raise BadInput(
            f"metadata.name: {name!r} must be a DNS label (lowercase letters, digits, '-'; <= 63 chars)"
        )
    spec = doc["spec"]
    base = Path(base_dir) if base_dir is not None else None
    checkpoints = tuple(
        _checkpoint(raw, f"spec.checkpoints[{i}]", base) for i, raw in enumerate(spec["checkpoints"])
    )
    seen: dict[str, int] = {}
    for i, ckpt in enumerate(checkpoints):
        if ckpt.name in seen:
            raise BadInput(
                f"spec.checkpoints[{i}].name: {ckpt.name!r} is already used by spec.checkpoints[{seen[ckpt.name]}]"
            )
        seen[ckpt.name] = i
    _check_evaluator(spec["evaluator"])
    cls = spec["classification"]
    return CalibrationRun(
        name=name,
        namespace=meta.get("namespace", "") or "default",
        checkpoints=checkpoints,
        suite=_suite(spec["suite"]),
        evaluator=spec["evaluator"],
        classification=Classification(alpha=float(cls["alpha"]), strict=bool(cls["strict"])),
        results=_results(spec.get("results"), base),
        queue_name=spec["queueName"],
        suspend=bool(spec["suspend"]),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0) or 0),
        labels=dict(meta.get("labels") or {}),
    )


def load_run(path: str | Path) -> CalibrationRun:
    """Read a CalibrationRun YAML file; relative paths resolve against its directory."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return parse_run(doc, base_dir=path.parent)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
