"""The kubelet's rules for turning a Pod's container into a process, as plain functions.

Each function restates what the kubelet (pkg/kubelet/kuberuntime) or the container runtime (CRI,
containerd) decides, with the same messages, so the local node refuses what a real one refuses:
the effective security context (container fields override pod fields), the runAsNonRoot check
against the image's user, the capability set, the command line from ENTRYPOINT/CMD and
command/args, resource quantities, and the image pull decision without a registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# containerd's default capability set (what a container gets before capabilities.add/drop).
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip


class ConfigError(Exception):
    """What the kubelet reports as the waiting reason ``reason`` (the pod stays Pending)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Security:
    """The effective security settings of one container."""

    user: int | None  # None: the image's user
    group: int | None
    groups: tuple[int, ...]  # fsGroup + supplementalGroups
    non_root: bool
    read_only_root: bool
    no_new_privileges: bool
    privileged: bool
    capabilities: tuple[str, ...]
    seccomp: str  # RuntimeDefault | Unconfined | Localhost:<path>
    fs_group: int | None = None
    fs_group_change_policy: str = "Always"
    extra: dict[str, Any] = field(default_factory=dict)


def pod_ref(pod: dict[str, Any]) -> str:
    """The kubelet's ``format.Pod``: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


def parse_quantity(value: str | int | float) -> float:
    """A resource quantity ("4Gi", "500m", "1.5", 2) as a number of base units."""
    text = str(value).strip()
    if text.endswith("m") and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) / 1000
    m = _QUANTITY.match(text)
    if not m or m.group(2) not in _SUFFIX:
        raise ConfigError("CreateContainerConfigError", f"invalid resource quantity {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def capabilities(context: dict[str, Any]) -> tuple[str, ...]:
    caps = context.get("capabilities") or {}
    drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
    add = {c.upper().removeprefix("CAP_") for c in caps.get("add") or []}
    base = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
    if "ALL" in add:
        return ("ALL",)
    return tuple(sorted(base | add))


def effective_security(pod: dict[str, Any], container: dict[str, Any]) -> Security:
    """securitycontext.DetermineEffectiveSecurityContext: container fields win over the pod's."""
    psc = pod["spec"].get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    fs_group = psc.get("fsGroup")
    groups = ([fs_group] if fs_group is not None else []) + list(psc.get("supplementalGroups") or [])
    seccomp = (pick("seccompProfile") or {}).get("type") or "Unconfined"
    if seccomp == "Localhost":
        seccomp = f"Localhost:{(pick('seccompProfile') or {}).get('localhostProfile', '')}"
    privileged = bool(csc.get("privileged"))
    ape = csc.get("allowPrivilegeEscalation")
    return Security(
        user=pick("runAsUser"),
        group=pick("runAsGroup"),
        groups=tuple(dict.fromkeys(int(g) for g in groups)),
        non_root=bool(pick("runAsNonRoot")),
        read_only_root=bool(csc.get("readOnlyRootFilesystem")),
        # the API defaults allowPrivilegeEscalation to true; privileged implies it
        no_new_privileges=ape is False and not privileged,
        privileged=privileged,
        capabilities=capabilities(csc),
        seccomp=seccomp,
        fs_group=fs_group,
        fs_group_change_policy=psc.get("fsGroupChangePolicy") or "Always",
    )


def image_user(user: str) -> tuple[int | None, str]:
    """The CRI's view of an image's USER: (uid, "") when numeric, (None, name) otherwise; no USER is root."""
    name = (user or "").split(":", 1)[0]
    if not name:
        return 0, ""
    if name.isdigit():
        return int(name), ""
    return None, name


def verify_run_as_non_root(pod: dict[str, Any], container: dict[str, Any], sec: Security, user: str) -> None:
    """kuberuntime verifyRunAsNonRoot, with its messages (reason CreateContainerConfigError)."""
    if not sec.non_root:
        return
    ref, name = pod_ref(pod), container["name"]
    if sec.user is not None:
        if int(sec.user) == 0:
            raise ConfigError(
                "CreateContainerConfigError",
                f'container\'s runAsUser breaks non-root policy (pod: "{ref}", container: {name})',
            )
        return
    uid, username = image_user(user)
    if uid == 0:
        raise ConfigError(
            "CreateContainerConfigError",
            f'container has runAsNonRoot and image will run as root (pod: "{ref}", container: {name})',
        )
    if uid is None:
        raise ConfigError(
            "CreateContainerConfigError",
            f"container has runAsNonRoot and image has non-numeric user ({username}), cannot verify user "
            f'is non-root (pod: "{ref}", container: {name})',
        )


def argv(container: dict[str, Any], entrypoint: list[str] | None, cmd: list[str] | None) -> list[str]:
    """The process a container runs: command replaces ENTRYPOINT (and drops CMD), args replace CMD."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return command + args
    return list(entrypoint or []) + (args if args else list(cmd or []))


def pull_decision(image: str, policy: str, present: bool, attempts: int) -> ConfigError | None:
    """No registry is reachable from the local node: an image is either present or cannot be pulled."""
    if policy == "Never":
        if present:
            return None
        return ConfigError(
            "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
        )
    if present and policy != "Always":
        return None
    if attempts == 0:
        return ConfigError(
            "ErrImagePull",
            f'failed to pull image "{image}": no registry is reachable from the local node'
            + (" (imagePullPolicy Always pulls even when the image is present)" if present else ""),
        )
    return ConfigError("ImagePullBackOff", f'Back-off pulling image "{image}"')


def memory_limit(container: dict[str, Any]) -> int | None:
    value = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return None if value is None else int(parse_quantity(value))


def cpu_limit(container: dict[str, Any]) -> float | None:
    value = ((container.get("resources") or {}).get("limits") or {}).get("cpu")
    return None if value is None else parse_quantity(value)


def cpu_shares(container: dict[str, Any]) -> int | None:
    """requests.cpu as cgroup cpu.shares (milliCPU * 1024 / 1000, at least 2), as the kubelet sets it."""
    resources = container.get("resources") or {}
    value = (resources.get("requests") or {}).get("cpu") or (resources.get("limits") or {}).get("cpu")
    return None if value is None else max(2, int(parse_quantity(value) * 1024))


def grace_seconds(pod: dict[str, Any]) -> float:
    """How long a deleted pod's containers get between SIGTERM and SIGKILL."""
    spec_grace = pod["spec"].get("terminationGracePeriodSeconds")
    spec_grace = 30 if spec_grace is None else spec_grace
    deletion = pod["metadata"].get("deletionGracePeriodSeconds")
    return float(spec_grace if deletion is None else min(deletion, spec_grace))
