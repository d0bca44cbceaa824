"""What a container's spec becomes on the local node, for either runtime: its environment (base
variables, then envFrom, then env with Kubernetes' ``$(VAR)`` expansion, fieldRef,
secretKeyRef/configMapKeyRef), the pod's hostname, and for the process runtime the rewriting of
mountPaths to host directories (whole path components, longest first, one pass)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube.podrules import ConfigError

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
HOST_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR",
    "BENCHCAL_SHARED", "BENCHCAL_CACHE", "XDG_CACHE_HOME",
)  # fmt: skip

DataLookup = Callable[[str, str, str], "dict[str, str] | None"]  # (plural, namespace, name) -> data


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay as written, ``$$`` escapes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def rewrite_paths(text: str, path_map: list[tuple[str, str]]) -> str:
    """One pass, longest mount first, so a rewritten path is never rewritten again."""
    if not path_map:
        return text
    ordered = sorted(path_map, key=lambda p: -len(p[0]))
    targets = dict(ordered)
    pattern = "|".join(re.escape(src) for src, _ in ordered)
    return re.sub(rf"(?<![\w.-])({pattern})(?=/|$|[\s'\":;,=])", lambda m: targets[m.group(1)], text)


def field_ref(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    m = re.match(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    return str(simple.get(path) or "")


def container_env(
    pod: dict[str, Any], container: dict[str, Any], base: dict[str, str], lookup: DataLookup
) -> dict[str, str]:
    """base (runtime variables), then envFrom, then env, with ``$(VAR)`` expansion; ``lookup`` reads
    a ConfigMap's or Secret's data (None: not found)."""
    ns = pod["metadata"]["namespace"]
    env = dict(base)
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef") or src.get("secretRef") or {}
        plural = "configmaps" if "configMapRef" in src else "secrets"
        data = lookup(plural, ns, ref.get("name", ""))
        if data is None and not ref.get("optional"):
            raise ConfigError("CreateContainerConfigError", f'{plural[:-1]} "{ref.get("name")}" not found')
        env.update({src.get("prefix", "") + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand_vars(str(item["value"]), env)
            continue
        vf = item.get("valueFrom") or {}
        if "fieldRef" in vf:
            env[item["name"]] = field_ref(pod, vf["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
            ref = vf.get("secretKeyRef") or vf["configMapKeyRef"]
            plural = "secrets" if "secretKeyRef" in vf else "configmaps"
            data = lookup(plural, ns, ref["name"])
            if data is not None and ref["key"] in data:
                env[item["name"]] = data[ref["key"]]
            elif not ref.get("optional"):
                what = (
                    f'{plural[:-1]} "{ref["name"]}" not found'
                    if data is None
                    else f"couldn't find key {ref['key']} in {plural[:-1]} {ns}/{ref['name']}"
                )
                raise ConfigError("CreateContainerConfigError", what)
        else:
            env[item["name"]] = ""
    return env


def process_base_env(
    pod: dict[str, Any], extra_env: dict[str, str], kubeconfig: Path | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in HOST_ENV}
    # the "image" is this checkout: its interpreter's bin dir (benchcal, kopf) comes first on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env.update(extra_env)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    env["HOSTNAME"] = hostname(pod)
    return env


def container_base_env(extra_env: dict[str, str], endpoint: tuple[str, str] | None) -> dict[str, str]:
    """What the kubelet adds to every container: the API service's variables."""
    if endpoint is None:
        return dict(extra_env)
    host, port = endpoint
    return {
        **extra_env,
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
    }


def hostname(pod: dict[str, Any]) -> str:
    return (pod["spec"].get("hostname") or pod["metadata"]["name"])[:63]
