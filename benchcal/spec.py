"""CalibrationRun parsing: the one reading of a run for the operator and for ``benchcal run``.

The document is validated against the CRD with its defaults applied (``benchcal.api``); then
the rules the API server enforces with CEL (and a few it cannot know, such as unknown benchmark
names) are checked here, and the result becomes plain frozen dataclasses. Every error is a
``BadInput`` naming the field path, e.g. ``spec.checkpoints[2].flops: ...``. Defaults live in
the CRD only: the dataclasses below have none of their own for anything the CRD defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchcal.api import validate_document
from benchcal.classification import MIN_CHECKPOINTS
from benchcal.errors import BadInput
from benchcal.pod import check_evaluator_pod

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
    preset: str  # "" when the benchmarks are listed
    limit: int | None
    seed: int
    fewshot_sampling: str = "nested"  # nested | independent | fixed (the CRD's enum and default)


@dataclass(frozen=True)
class ResultsLocation:
    kind: str  # path | pvc | uri
    path: str = ""
    claim_name: str = ""
    uri: str = ""


@dataclass(frozen=True)
class Classification:
    alpha: float
    strict: bool


# spec.evaluator: CRD property -> EvaluatorSettings field, for the settings benchcal interprets.
EVALUATOR_FIELDS = {
    "dtype": "dtype",
    "maxLength": "max_length",
    "tokenBudget": "token_budget",
    "trustRemoteCode": "trust_remote_code",
    "shards": "shards",
    "backoffLimit": "backoff_limit",
    "activeDeadlineSeconds": "active_deadline_seconds",
    "scratchSize": "scratch_size",
    "podSecurityContext": "pod_security_context",
    "image": "image",
    "serviceAccountName": "service_account_name",
    "resources": "resources",
}
# spec.evaluator: core/v1 fields passed through unchanged (EvaluatorSettings.pod, camelCase keys):
# set on the evaluator pod as given ...
POD_FIELDS = (
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "runtimeClassName",
    "imagePullSecrets",
)
# ... and appended to the operator's own variables, volumes and mounts.
APPENDED_FIELDS = ("env", "volumes", "volumeMounts")


@dataclass(frozen=True)
class EvaluatorSettings:
    """``spec.evaluator`` with the CRD's defaults applied: how evaluator pods run."""

    dtype: str  # auto | float32 | bfloat16 | float16
    max_length: int | None  # None: the model's own context length
    token_budget: int | None  # None: the evaluator's default for the device
    trust_remote_code: bool
    shards: int  # pods per checkpoint (an Indexed Job when > 1)
    backoff_limit: int
    active_deadline_seconds: int  # per checkpoint Job (the CRD's default: one day)
    scratch_size: str  # sizeLimit of the /tmp emptyDir, a quantity
    pod_security_context: dict[str, Any] | None  # None: the operator's default (uid/gid/fsGroup)
    image: str | None  # None: the operator's BENCHCAL_EVALUATOR_IMAGE
    service_account_name: str | None  # None: the run's own <run>-benchcal, made by the operator
    resources: dict[str, Any] | None  # a core/v1 ResourceRequirements
    pod: dict[str, Any]  # the POD_FIELDS and APPENDED_FIELDS that are set, unchanged (camelCase)


@dataclass(frozen=True)
class CalibrationRun:
    name: str
    namespace: str
    checkpoints: tuple[Checkpoint, ...]
    suite: Suite
    evaluator: EvaluatorSettings
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


def _check_distinct_flops(checkpoints: tuple[Checkpoint, ...]) -> None:
    """The reducer pools checkpoints of equal FLOPs and tests monotonicity across the rest: fewer
    than MIN_CHECKPOINTS distinct values would spend a Job per checkpoint and then fail there.
    (The CRD's minItems and its CEL rule on spec.checkpoints refuse the same at admission.)"""
    by_flops: dict[float, list[int]] = {}
    for i, ckpt in enumerate(checkpoints):
        by_flops.setdefault(ckpt.flops, []).append(i)
    if len(by_flops) >= MIN_CHECKPOINTS:
        return

    def where(i: int) -> str:
        how = "" if checkpoints[i].params is None else ", 6 * params * tokens"
        return f"spec.checkpoints[{i}] ({checkpoints[i].name}{how})"

    shared = [
        " and ".join(where(i) for i in idx) + f" share flops {flops:g}"
        for flops, idx in by_flops.items()
        if len(idx) > 1
    ]
    raise BadInput(
        f"spec.checkpoints: {len(checkpoints)} checkpoint(s) with only {len(by_flops)} distinct flops "
        f"value(s); at least {MIN_CHECKPOINTS} different training FLOPs are needed to test monotonicity "
        "(checkpoints with equal FLOPs are pooled)" + (f": {'; '.join(shared)}" if shared else "")
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
    return Suite(
        selections,
        shots,
        raw.get("preset", ""),
        raw.get("limit"),
        int(raw["seed"]),
        str(raw["fewshotSampling"]),
    )


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
    check_evaluator_pod(ev)


def _evaluator(ev: dict[str, Any]) -> EvaluatorSettings:
    _check_evaluator(ev)
    return EvaluatorSettings(
        # defaulted by the CRD (api.apply_defaults): always present
        dtype=ev["dtype"],
        trust_remote_code=ev["trustRemoteCode"],
        shards=ev["shards"],
        backoff_limit=ev["backoffLimit"],
        active_deadline_seconds=ev["activeDeadlineSeconds"],
        scratch_size=ev["scratchSize"],
        # optional, no default: None when absent
        max_length=ev.get("maxLength"),
        token_budget=ev.get("tokenBudget"),
        pod_security_context=ev.get("podSecurityContext"),
        image=ev.get("image"),
        service_account_name=ev.get("serviceAccountName"),
        resources=ev.get("resources"),
        pod={key: ev[key] for key in (*POD_FIELDS, *APPENDED_FIELDS) if key in ev},
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
    _check_distinct_flops(checkpoints)
    cls = spec["classification"]
    return CalibrationRun(
        name=name,
        namespace=meta.get("namespace", "") or "default",
        checkpoints=checkpoints,
        suite=_suite(spec["suite"]),
        evaluator=_evaluator(spec["evaluator"]),
        classification=Classification(alpha=float(cls["alpha"]), strict=bool(cls["strict"])),
        results=_results(spec.get("results"), base),
        queue_name=spec["queueName"],
        suspend=bool(spec["suspend"]),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0) or 0),
        labels=dict(meta.get("labels") or {}),
    )


def read_yaml_file(path: Path) -> Any:
    """One YAML document; a missing file or bad YAML is BadInput naming the file (and line)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def load_run(path: str | Path) -> CalibrationRun:
    """Read a CalibrationRun YAML file; relative paths resolve against its directory."""
    path = Path(path)
    doc = read_yaml_file(path)
    try:
        return parse_run(doc, base_dir=path.parent)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
