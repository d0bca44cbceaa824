"""Defaulting and validation for the built-in kinds, the parts our operator and tests touch."""

from __future__ import annotations

import re
from typing import Any

from tests.kube.apiserver.errors import invalid

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate_name(kind: str, group: str, name: str, *, label: bool = False) -> None:
    limit = 63 if label else 253
    pattern = DNS_LABEL if label else DNS_SUBDOMAIN
    if len(name) > limit or not pattern.match(name):
        what = "RFC 1123 label" if label else "RFC 1123 subdomain"
        raise invalid(
            kind,
            group,
            name,
            [
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric characters, '
                    f"'-' or '.', and must start and end with an alphanumeric character (at most {limit} characters)",
                )
            ],
        )


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


def validate_pod_spec(kind: str, group: str, name: str, spec: Any, path: str) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    errs = []
    containers = spec.get("containers")
    if not containers:
        errs.append((f"{path}.containers", "Required value"))
    for i, c in enumerate(containers or []):
        if not c.get("name"):
            errs.append((f"{path}.containers[{i}].name", "Required value"))
        if not c.get("image"):
            errs.append((f"{path}.containers[{i}].image", "Required value"))
    return errs


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


def validate_job(job: dict[str, Any]) -> None:
    name = job["metadata"]["name"]
    validate_name("Job", "batch", name, label=True)
    spec = job.get("spec") or {}
    tmpl = (spec.get("template") or {}).get("spec")
    errs = validate_pod_spec("Job", "batch", name, tmpl, "spec.template.spec")
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
    if errs:
        raise invalid("Job", "batch", name, errs)


def validate_job_update(old: dict[str, Any], new: dict[str, Any]) -> None:
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
    if errs:
        raise invalid("Job", "batch", new["metadata"]["name"], errs)


def prepare_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    pod.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


def prepare_namespace(ns: dict[str, Any]) -> None:
    ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
    ns.setdefault("spec", {"finalizers": ["kubernetes"]})
    ns["status"] = {"phase": "Active"}
