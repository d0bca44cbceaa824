"""Defaulting and validation for the built-in kinds, the parts our operator and tests touch."""

from __future__ import annotations

from typing import Any

from tests.kube.apiserver import validation


def default_pod_spec(spec: dict[str, Any], restart_policy: str = "Always") -> None:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault(
            "imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest") else "IfNotPresent"
        )
        c.setdefault("resources", {})


def prepare_job(job: dict[str, Any], uid: str) -> None:
    """What the Job REST strategy does on create: defaults, selector and pod-template labels."""
    spec = job.setdefault("spec", {})
    name = job["metadata"]["name"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6 if spec.get("backoffLimitPerIndex") is None else 2147483647)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault(
        "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    )
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    meta = template.setdefault("metadata", {})
    meta.setdefault("labels", {}).update(labels)
    pod_spec = template.setdefault("spec", {})
    default_pod_spec(pod_spec, restart_policy=pod_spec.get("restartPolicy") or "Never")
    job.setdefault("status", {})


def job_errors(job: dict[str, Any]) -> list[tuple[str, str]]:
    """batch/v1 ``ValidateJob`` (the parts we need): Indexed names, the pod template, counts."""
    spec = job.get("spec") or {}
    errs = validation.indexed_job_name(job)
    errs += validation.pod_template(spec.get("template"), "spec.template")
    tmpl = (spec.get("template") or {}).get("spec")
    policy = (tmpl or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            )
        )
    if spec.get("podFailurePolicy") and policy != "Never":
        errs.append(
            (
                "spec.podFailurePolicy",
                'Invalid value: "": only "Never" is supported when podFailurePolicy is specified',
            )
        )
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        v = spec.get(key)
        if v is not None and (not isinstance(v, int) or v < (1 if key == "activeDeadlineSeconds" else 0)):
            errs.append((f"spec.{key}", f"Invalid value: {v}: must be greater than or equal to 0"))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        errs.append(("spec.completions", "Required value: when completion mode is Indexed"))
    return errs


def job_update_errors(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """spec.template and spec.selector are immutable (the template may change while suspended)."""
    o, n = old.get("spec") or {}, new.get("spec") or {}
    errs = []
    if o.get("selector") != n.get("selector"):
        errs.append(("spec.selector", "Invalid value: field is immutable"))
    if o.get("template") != n.get("template") and not (o.get("suspend") and n.get("suspend")):
        errs.append(("spec.template", "Invalid value: field is immutable"))
    for key in ("completionMode", "podFailurePolicy"):
        if o.get(key) != n.get(key):
            errs.append((f"spec.{key}", "Invalid value: field is immutable"))
    return errs


def role_errors(role: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    errs = []
    for i, rule in enumerate(role.get("rules") or []):
        if not rule.get("verbs"):
            errs.append((f"rules[{i}].verbs", "Required value: verbs must contain at least one value"))
        if rule.get("nonResourceURLs") and kind == "Role":
            errs.append(
                (
                    f"rules[{i}].nonResourceURLs",
                    "Invalid value: namespaced rules cannot apply to non-resource URLs",
                )
            )
        if not rule.get("nonResourceURLs") and not rule.get("resources"):
            errs.append(
                (f"rules[{i}].resources", "Required value: resource rules must supply at least one resource")
            )
        if rule.get("resources") and rule.get("apiGroups") is None:
            errs.append(
                (f"rules[{i}].apiGroups", "Required value: resource rules must supply at least one api group")
            )
    return errs


def binding_errors(binding: dict[str, Any], old: dict[str, Any] | None, kind: str) -> list[tuple[str, str]]:
    ref = binding.get("roleRef") or {}
    errs = []
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        errs.append(
            (
                "roleRef.apiGroup",
                f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "rbac.authorization.k8s.io"',
            )
        )
    allowed = ("ClusterRole",) if kind == "ClusterRoleBinding" else ("Role", "ClusterRole")
    if ref.get("kind") not in allowed:
        errs.append(
            (
                "roleRef.kind",
                f'Unsupported value: "{ref.get("kind", "")}": supported values: '
                + ", ".join(f'"{k}"' for k in allowed),
            )
        )
    if not ref.get("name"):
        errs.append(("roleRef.name", "Required value"))
    for i, subject in enumerate(binding.get("subjects") or []):
        if (
            subject.get("kind") == "ServiceAccount"
            and not subject.get("namespace")
            and kind == "ClusterRoleBinding"
        ):
            errs.append((f"subjects[{i}].namespace", "Required value"))
        if not subject.get("name"):
            errs.append((f"subjects[{i}].name", "Required value"))
    if old is not None and old.get("roleRef") != binding.get("roleRef"):
        errs.append(("roleRef", f"Invalid value: {ref!r}: cannot change roleRef"))
    return errs


def prepare_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    pod.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


def prepare_namespace(ns: dict[str, Any]) -> None:
    ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
    ns.setdefault("spec", {"finalizers": ["kubernetes"]})
    ns["status"] = {"phase": "Active"}
