"""Go-side validation the real server applies to every object and to pod specs, with its wording.

Object metadata (k8s.io/apimachinery ``ValidateObjectMeta``, v1.32): name and generateName by
the kind's name rule, label keys (qualified names) and values. Pod specs
(``ValidatePodSpec``, the parts our product builds): container names and images, unique
volume names that are DNS labels, volumeMounts that name an existing volume at a unique,
non-empty mountPath. Indexed Jobs: ``<name>-<completions-1>`` must be a DNS-1123 label.
Every function returns ``(field, message)`` pairs for ``errors.invalid``.
"""

from __future__ import annotations

import json
import re
from typing import Any

Errors = list[tuple[str, str]]

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_QNAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")


def quote(value: Any) -> str:
    """How Go's field errors print a bad value (%q for strings, %v for numbers)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    joined = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {joined}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL.match(value):
        if _SUBDOMAIN.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    DNS1123_LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _SUBDOMAIN.match(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
                DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)


def qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME.match(name):
        errs.append(
            "name part " + regex_error(_QNAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.match(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def labels(values: Any, path: str) -> Errors:
    if not isinstance(values, dict):
        return []
    errs: Errors = []
    for key, value in values.items():
        errs += [(path, f"Invalid value: {quote(key)}: {m}") for m in qualified_name(str(key))]
        if not isinstance(value, str):
            errs.append((path, f"Invalid value: {quote(value)}: label values must be strings"))
            continue
        errs += [(path, f"Invalid value: {quote(value)}: {m}") for m in label_value(value)]
    return errs


def path_segment_name(value: str) -> list[str]:
    """RBAC object names (``ValidateRBACName``): anything a URL path segment can hold."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


NAME_RULES = {"label": dns1123_label, "subdomain": dns1123_subdomain, "path": path_segment_name}


def object_meta(meta: dict[str, Any], *, name_rule: str = "subdomain", path: str = "metadata") -> Errors:
    """``ValidateObjectMeta``: generateName and name by the kind's rule, then labels."""
    rule = NAME_RULES[name_rule]
    errs: Errors = []
    if meta.get("generateName"):
        # as the Go name functions with prefix=true: a trailing '-' is allowed
        gen = meta["generateName"]
        msgs = rule(gen[:-1] if gen.endswith("-") else gen)
        errs += [(f"{path}.generateName", f"Invalid value: {quote(gen)}: {m}") for m in msgs]
    name = meta.get("name") or ""
    if not name:
        errs.append((f"{path}.name", "Required value: name or generateName is required"))
    else:
        errs += [(f"{path}.name", f"Invalid value: {quote(name)}: {m}") for m in rule(name)]
    errs += labels(meta.get("labels"), f"{path}.labels")
    return errs


# ------------------------------------------------------------ pod specs
def _containers(spec: dict[str, Any], key: str, path: str, volumes: set[str]) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, c in enumerate(spec.get(key) or []):
        where = f"{path}.{key}[{i}]"
        name = c.get("name") or ""
        if not name:
            errs.append((f"{where}.name", "Required value"))
        elif name in seen:
            errs.append((f"{where}.name", f"Duplicate value: {quote(name)}"))
        else:
            errs += [(f"{where}.name", f"Invalid value: {quote(name)}: {m}") for m in dns1123_label(name)]
        seen.add(name)
        if not c.get("image"):
            errs.append((f"{where}.image", "Required value"))
        policy = c.get("restartPolicy")
        if policy is not None and key == "containers":
            errs.append((f"{where}.restartPolicy", "Forbidden: may not be set for non-init containers"))
        elif policy is not None and policy != "Always":  # native sidecars (1.29+): Always or unset
            errs.append(
                (f"{where}.restartPolicy", f'Unsupported value: {quote(policy)}: supported values: "Always"')
            )
        mount_points: set[str] = set()
        for j, m in enumerate(c.get("volumeMounts") or []):
            mp = f"{where}.volumeMounts[{j}]"
            if not m.get("name"):
                errs.append((f"{mp}.name", "Required value"))
            elif m["name"] not in volumes:
                errs.append((f"{mp}.name", f"Not found: {quote(m['name'])}"))
            mount = m.get("mountPath") or ""
            if not mount:
                errs.append((f"{mp}.mountPath", "Required value"))
            elif mount in mount_points:
                errs.append((f"{mp}.mountPath", f"Invalid value: {quote(mount)}: must be unique"))
            mount_points.add(mount)
    return errs


def pod_spec(spec: Any, path: str) -> Errors:
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    errs: Errors = []
    names: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        name = vol.get("name") or ""
        where = f"{path}.volumes[{i}].name"
        if not name:
            errs.append((where, "Required value"))
        elif name in names:
            errs.append((where, f"Duplicate value: {quote(name)}"))
        else:
            errs += [(where, f"Invalid value: {quote(name)}: {m}") for m in dns1123_label(name)]
        names.add(name)
    if not spec.get("containers"):
        errs.append((f"{path}.containers", "Required value"))
    errs += _containers(spec, "containers", path, names)
    errs += _containers(spec, "initContainers", path, names)
    sa = spec.get("serviceAccountName")
    if sa:
        errs += [
            (f"{path}.serviceAccountName", f"Invalid value: {quote(sa)}: {m}") for m in dns1123_subdomain(sa)
        ]
    return errs


def pod_template(template: Any, path: str) -> Errors:
    """``ValidatePodTemplateSpec``: template labels (at ``<path>.labels``), then the spec."""
    template = template if isinstance(template, dict) else {}
    meta = template.get("metadata") or {}
    return labels(meta.get("labels"), f"{path}.labels") + pod_spec(template.get("spec"), f"{path}.spec")


def indexed_job_name(job: dict[str, Any]) -> Errors:
    spec = job.get("spec") or {}
    completions = spec.get("completions")
    if spec.get("completionMode") != "Indexed" or not isinstance(completions, int) or completions <= 0:
        return []
    name = job["metadata"].get("name") or ""
    hostname = f"{name}-{completions - 1}"
    if not dns1123_label(hostname):
        return []
    return [
        (
            "metadata.name",
            f"Invalid value: {quote(name)}: will not able to create pod with invalid DNS label: {hostname}",
        )
    ]
