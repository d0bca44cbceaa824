"""Pod Security admission (k8s.io/pod-security-admission), from the namespace's labels.

``pod-security.kubernetes.io/enforce`` (and ``-version``) rejects violating Pods with the real
403 ``pods "x" is forbidden: violates PodSecurity "restricted:latest": <reason> (<detail>), …``;
``warn`` (which defaults to the enforce level when that is stricter) adds
``would violate PodSecurity …`` warnings to Pods and to pod templates of Jobs, whose own
creation enforce never blocks — their pods are refused later, by the job controller's creates.

Checks implemented (messages as in the upstream ``policy/check_*.go``), run in upstream order
(baseline IDs sorted, then restricted IDs sorted, overridden baseline checks dropped):
baseline — hostNamespaces, hostPathVolumes, hostPorts, privileged, capabilities_baseline,
procMount, seccompProfile_baseline; restricted — allowPrivilegeEscalation,
capabilities_restricted, restrictedVolumes, runAsNonRoot, runAsUser, seccompProfile_restricted.
Not implemented: appArmorProfile, seLinuxOptions, sysctls, windowsHostProcess, host probes, and
the Windows/user-namespace relaxations. Every version label evaluates as ``latest``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Pod = dict[str, Any]
Result = tuple[str, str] | None  # (forbidden reason, detail) when the check fails
LEVELS = ("privileged", "baseline", "restricted")
PREFIX = "pod-security.kubernetes.io/"
BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def _q(items: list[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def _pl(one: str, many: str, n: int) -> str:
    return one if n == 1 else many


def _containers(spec: Pod) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _sc(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("securityContext") or {}


def _who(names: list[str]) -> str:
    return f"{_pl('container', 'containers', len(names))} {_q(names)}"


# ------------------------------------------------------------ baseline
def host_namespaces(meta: Pod, spec: Pod) -> Result:
    found = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    return ("host namespaces", ", ".join(found)) if found else None


def host_path_volumes(meta: Pod, spec: Pod) -> Result:
    vols = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    return ("hostPath volumes", f"{_pl('volume', 'volumes', len(vols))} {_q(vols)}") if vols else None


def host_ports(meta: Pod, spec: Pod) -> Result:
    bad, ports = [], set()
    for c in _containers(spec):
        used = [p["hostPort"] for p in c.get("ports") or [] if p.get("hostPort")]
        if used:
            bad.append(c["name"])
            ports.update(str(p) for p in used)
    if not bad:
        return None
    return (
        "hostPort",
        f"{_who(bad)} {_pl('uses', 'use', len(bad))} {_pl('hostPort', 'hostPorts', len(ports))} "
        + ", ".join(sorted(ports)),
    )


def privileged(meta: Pod, spec: Pod) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("privileged") is True]
    return ("privileged", f"{_who(bad)} must not set securityContext.privileged=true") if bad else None


def capabilities_baseline(meta: Pod, spec: Pod) -> Result:
    bad, caps = [], set()
    for c in _containers(spec):
        extra = [a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in BASELINE_CAPS]
        if extra:
            bad.append(c["name"])
            caps.update(extra)
    if not bad:
        return None
    detail = f"{_who(bad)} must not include {_q(sorted(caps))} in securityContext.capabilities.add"
    return ("non-default capabilities", detail)


def proc_mount(meta: Pod, spec: Pod) -> Result:
    bad, kinds = [], set()
    for c in _containers(spec):
        pm = _sc(c).get("procMount")
        if pm is not None and pm != "Default":
            bad.append(c["name"])
            kinds.add(pm)
    if not bad:
        return None
    return ("procMount", f"{_who(bad)} must not set securityContext.procMount to {_q(sorted(kinds))}")


def _seccomp_type(sc: dict[str, Any]) -> str | None:
    profile = sc.get("seccompProfile")
    return None if profile is None else str(profile.get("type", ""))


def _valid_seccomp(kind: str | None) -> bool:
    return kind in ("RuntimeDefault", "Localhost")


def _explicitly_bad(
    spec: Pod, pod_bad: bool, kind_of: Callable[[dict[str, Any]], Any], bad: Callable[[Any], bool]
):
    setters = ["pod"] if pod_bad else []
    names = [c["name"] for c in _containers(spec) if kind_of(_sc(c)) is not None and bad(kind_of(_sc(c)))]
    if names:
        setters.append(_who(names))
    return setters


def seccomp_baseline(meta: Pod, spec: Pod) -> Result:
    pod_kind = _seccomp_type(spec.get("securityContext") or {})
    pod_bad = pod_kind is not None and not _valid_seccomp(pod_kind)
    setters = _explicitly_bad(spec, pod_bad, _seccomp_type, lambda k: not _valid_seccomp(k))
    if not setters:
        return None
    values = {pod_kind} if pod_bad else set()
    values |= {_seccomp_type(_sc(c)) for c in _containers(spec)} - {None, "RuntimeDefault", "Localhost"}
    detail = (
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_q(sorted(values))}"
    )
    return ("seccompProfile", detail)


# ------------------------------------------------------------ restricted
def allow_privilege_escalation(meta: Pod, spec: Pod) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return (
        "allowPrivilegeEscalation != false",
        f"{_who(bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def capabilities_restricted(meta: Pod, spec: Pod) -> Result:
    missing, adding, caps = [], [], set()
    for c in _containers(spec):
        cap = _sc(c).get("capabilities")
        if cap is None:
            missing.append(c["name"])
            continue
        if "ALL" not in (cap.get("drop") or []):
            missing.append(c["name"])
        extra = [a for a in cap.get("add") or [] if a != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c["name"])
            caps.update(extra)
    details = []
    if missing:
        details.append(f'{_who(missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(
            f"{_who(adding)} must not include {_q(sorted(caps))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def restricted_volumes(meta: Pod, spec: Pod) -> Result:
    bad, kinds = [], set()
    for v in spec.get("volumes") or []:
        if any(k in v for k in RESTRICTED_VOLUMES):
            continue
        bad.append(v["name"])
        kinds.add(next((k for k in v if k != "name"), "unknown"))
    if not bad:
        return None
    detail = (
        f"{_pl('volume', 'volumes', len(bad))} {_q(bad)} {_pl('uses', 'use', len(bad))} "
        f"{_pl('restricted volume type', 'restricted volume types', len(kinds))} {_q(sorted(kinds))}"
    )
    return ("restricted volume types", detail)


def run_as_non_root(meta: Pod, spec: Pod) -> Result:
    pod = (spec.get("securityContext") or {}).get("runAsNonRoot")
    setters = ["pod"] if pod is False else []
    explicit = [c["name"] for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [
        c["name"] for c in _containers(spec) if _sc(c).get("runAsNonRoot") is None and pod is not True
    ]
    if explicit:
        setters.append(_who(explicit))
    if setters:
        return (
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return ("runAsNonRoot != true", f"pod or {_who(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def run_as_user(meta: Pod, spec: Pod) -> Result:
    setters = ["pod"] if (spec.get("securityContext") or {}).get("runAsUser") == 0 else []
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if bad:
        setters.append(_who(bad))
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def seccomp_restricted(meta: Pod, spec: Pod) -> Result:
    pod_kind = _seccomp_type(spec.get("securityContext") or {})
    pod_bad = pod_kind is not None and not _valid_seccomp(pod_kind)
    pod_set = pod_kind is not None and not pod_bad
    failed = seccomp_baseline(meta, spec)
    if failed:
        return failed
    implicit = [c["name"] for c in _containers(spec) if _seccomp_type(_sc(c)) is None and not pod_set]
    if implicit:
        detail = f'pod or {_who(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        return ("seccompProfile", detail)
    return None


BASELINE: dict[str, Callable[[Pod, Pod], Result]] = {
    "capabilities_baseline": capabilities_baseline,
    "hostNamespaces": host_namespaces,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "privileged": privileged,
    "procMount_baseline": proc_mount,
    "seccompProfile_baseline": seccomp_baseline,
}
RESTRICTED: dict[str, Callable[[Pod, Pod], Result]] = {
    "allowPrivilegeEscalation": allow_privilege_escalation,
    "capabilities_restricted": capabilities_restricted,
    "restrictedVolumes": restricted_volumes,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile_restricted": seccomp_restricted,
}
OVERRIDDEN = {"capabilities_baseline", "seccompProfile_baseline", "hostPathVolumes"}


def checks(level: str) -> list[Callable[[Pod, Pod], Result]]:
    if level == "privileged":
        return []
    base = [BASELINE[k] for k in sorted(BASELINE) if level == "baseline" or k not in OVERRIDDEN]
    return base + ([RESTRICTED[k] for k in sorted(RESTRICTED)] if level == "restricted" else [])


def evaluate(level: str, meta: Pod, spec: Pod) -> str:
    """'' when allowed, else the upstream ForbiddenDetail: ``reason (detail), reason (detail)``."""
    failed = [r for r in (check(meta, spec) for check in checks(level)) if r is not None]
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in failed)


# ------------------------------------------------------------ namespace policy
def policy(labels: dict[str, str]) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """{mode: (level, version)} for enforce/audit/warn, and label errors (upstream PolicyToEvaluate)."""
    out = {mode: ("privileged", "latest") for mode in ("enforce", "audit", "warn")}
    errs: list[tuple[str, str]] = []
    has_enforce = False
    for mode in out:
        level = labels.get(PREFIX + mode)
        version = labels.get(PREFIX + mode + "-version")
        lv, ver = out[mode]
        if level is not None:
            if level in LEVELS:
                lv = level
                has_enforce = has_enforce or mode == "enforce"
            else:
                errs.append(
                    (
                        f"metadata.labels[{PREFIX}{mode}]",
                        f'Invalid value: "{level}": must be one of privileged, baseline, restricted',
                    )
                )
                lv = "restricted" if mode == "enforce" else "privileged"  # fail closed for enforce
        if version is not None:
            if version == "latest" or (version.startswith("v1.") and version[3:].isdigit()):
                ver = version
            else:
                errs.append(
                    (
                        f"metadata.labels[{PREFIX}{mode}-version]",
                        f'Invalid value: "{version}": must be "latest" or "v1.x"',
                    )
                )
        out[mode] = (lv, ver)
    if (
        PREFIX + "warn" not in labels
        and has_enforce
        and LEVELS.index(out["enforce"][0]) > LEVELS.index(out["warn"][0])
    ):
        out["warn"] = (
            out["enforce"][0],
            out["warn"][1] if PREFIX + "warn-version" in labels else out["enforce"][1],
        )
    return out, errs


def label(level_version: tuple[str, str]) -> str:
    return f"{level_version[0]}:{level_version[1]}"
