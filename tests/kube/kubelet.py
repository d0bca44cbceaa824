"""The kubelet stand-in: runs a Pod's containers as local processes.

Mapping rules (documented in docs/testing.md):
- volumes: emptyDir -> a fresh directory under the pod's work dir; persistentVolumeClaim -> the
  directory configured for that claim name (``pvc_dirs``; else ``<work>/pvcs/<claim>``);
  configMap/secret -> a directory holding one file per key; hostPath -> the path itself.
- paths: every argv element, env value and workingDir has each volumeMount's mountPath (and the
  container's terminationMessagePath) rewritten to the local directory, longest prefix first,
  wherever the mountPath occurs as a whole path component (so ``/tmp/hf`` -> ``<tmpdir>/hf``).
- env: ``$(VAR)`` expansion as Kubernetes does; fieldRef (metadata.name/namespace/uid/labels/
  annotations, spec.nodeName, status.podIP), secretKeyRef, configMapKeyRef, envFrom.
  A container that mounts a ServiceAccount token volume (``projected``, added by the server's
  ServiceAccount admission unless ``automountServiceAccountToken: false``) gets ``KUBECONFIG``
  pointing at a kubeconfig with that token (see satoken.py); others get no API credentials.
- the image is ignored: the command runs on this machine with the test's PATH.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError
from tests.kube.satoken import PodCredentials, fill_projected, token_mount

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


@dataclass
class RunningContainer:
    name: str
    proc: subprocess.Popen
    log_path: Path
    termination_path: Path
    policy: str
    started: str
    path_map: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunningPod:
    namespace: str
    name: str
    uid: str
    containers: list[RunningContainer] = field(default_factory=list)
    disrupted: str = ""  # reason, when a fault killed it


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


def _field_ref(pod: dict[str, Any], path: str) -> str:
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


class Kubelet:
    def __init__(
        self,
        api: Api,
        *,
        work_dir: Path,
        log_dir: Path,
        credentials: PodCredentials | None = None,
        pvc_dirs: dict[str, Path] | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.api = api
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.credentials = credentials
        self.pvc_dirs = dict(pvc_dirs or {})
        self.extra_env = dict(extra_env or {})

    # ------------------------------------------------------------ lookups through the API
    def _read(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get(self.api.type("", "v1", plural), namespace, name)
        except ApiError:
            return None

    def _data(self, plural: str, namespace: str, name: str) -> dict[str, str] | None:
        obj = self._read(plural, namespace, name)
        if obj is None:
            return None
        data = dict(obj.get("data") or {})
        if plural == "secrets":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        return data

    # ------------------------------------------------------------ volumes and env
    def _volumes(self, pod: dict[str, Any], pod_dir: Path) -> dict[str, Path]:
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for vol in pod["spec"].get("volumes") or []:
            name = vol["name"]
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                path = self.pvc_dirs.get(claim) or self.work_dir / "pvcs" / ns / claim
            elif "hostPath" in vol:
                path = Path(vol["hostPath"]["path"])
            elif "projected" in vol:
                path = pod_dir / "volumes" / name
                fill_projected(self.credentials, pod, vol, path, self._data)
            else:
                path = pod_dir / "volumes" / name
                for key, plural, ref in (
                    ("configMap", "configmaps", "name"),
                    ("secret", "secrets", "secretName"),
                ):
                    if key in vol:
                        data = self._data(plural, ns, vol[key].get(ref, "")) or {}
                        path.mkdir(parents=True, exist_ok=True)
                        items = vol[key].get("items") or [{"key": k, "path": k} for k in data]
                        for item in items:
                            if item["key"] in data:
                                (path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                                (path / item["path"]).write_text(data[item["key"]])
            path.mkdir(parents=True, exist_ok=True)
            out[name] = path
        return out

    def _env(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        path_map: list[tuple[str, str]],
        kubeconfig: Path | None = None,
    ) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            in (
                "PATH",
                "HOME",
                "LANG",
                "LC_ALL",
                "PYTHONPATH",
                "VIRTUAL_ENV",
                "TMPDIR",
                "BENCHCAL_SHARED",
                "BENCHCAL_CACHE",
                "XDG_CACHE_HOME",
            )
        }
        # the "image" is this checkout: its interpreter's bin dir (benchcal, kopf) comes first on PATH
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        env.update(self.extra_env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        env["HOSTNAME"] = pod["spec"].get("hostname") or pod["metadata"]["name"]
        base = dict(env)
        for src in container.get("envFrom") or []:
            ref = src.get("configMapRef") or src.get("secretRef") or {}
            data = (
                self._data("configmaps" if "configMapRef" in src else "secrets", ns, ref.get("name", ""))
                or {}
            )
            env.update({src.get("prefix", "") + k: v for k, v in data.items()})
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand_vars(str(item["value"]), env)
                continue
            vf = item.get("valueFrom") or {}
            if "fieldRef" in vf:
                env[item["name"]] = _field_ref(pod, vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
                ref = vf.get("secretKeyRef") or vf["configMapKeyRef"]
                data = self._data("secrets" if "secretKeyRef" in vf else "configmaps", ns, ref["name"]) or {}
                if ref["key"] in data:
                    env[item["name"]] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise RuntimeError(
                        f"CreateContainerConfigError: couldn't find key {ref['key']} in {ref['name']}"
                    )
            else:
                env[item["name"]] = ""
        # only what the pod spec says is rewritten; the runner's own values are host paths already
        return {k: v if base.get(k) == v else rewrite_paths(v, path_map) for k, v in env.items()}

    # ------------------------------------------------------------ start / stop
    def start(self, pod: dict[str, Any], command_override: list[str] | None = None) -> RunningPod:
        meta = pod["metadata"]
        pod_dir = self.work_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        pod_dir.mkdir(parents=True, exist_ok=True)
        volumes = self._volumes(pod, pod_dir)
        running = RunningPod(meta["namespace"], meta["name"], meta["uid"])
        for container in pod["spec"]["containers"]:
            cname = container["name"]
            term_path = pod_dir / f"termination-{cname}"
            term_path.write_text("")
            path_map = [
                (
                    m["mountPath"].rstrip("/") or "/",
                    str(volumes[m["name"]] / m.get("subPath", "")).rstrip("/"),
                )
                for m in container.get("volumeMounts") or []
                if m["name"] in volumes
            ]
            path_map.append((container.get("terminationMessagePath", "/dev/termination-log"), str(term_path)))
            path_map.sort(key=lambda p: -len(p[0]))
            log_path = self.log_dir / meta["namespace"] / meta["name"] / f"{cname}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")
            try:
                token_volume = token_mount(container)
                kubeconfig = None
                if token_volume is not None and self.credentials is not None:
                    kubeconfig = self.credentials.kubeconfig_for(
                        volumes[token_volume], meta["namespace"], pod_dir / f"kubeconfig-{cname}"
                    )
                env = self._env(pod, container, path_map, kubeconfig)
                argv = [
                    rewrite_paths(expand_vars(a, env), path_map)
                    for a in (container.get("command") or []) + (container.get("args") or [])
                ]
                if command_override is not None:
                    argv = command_override
                if not argv:
                    raise RuntimeError("the local runner cannot run image entrypoints: set command")
                cwd = rewrite_paths(container.get("workingDir") or str(pod_dir), path_map)
                Path(cwd).mkdir(parents=True, exist_ok=True)
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except (OSError, RuntimeError) as exc:
                log.write(f"{exc}\n".encode())
                proc = subprocess.Popen(["sh", "-c", "exit 128"], stdout=log, stderr=subprocess.STDOUT)
            finally:
                log.close()
            running.containers.append(
                RunningContainer(
                    cname,
                    proc,
                    log_path,
                    term_path,
                    container.get("terminationMessagePolicy", "File"),
                    _now(),
                    path_map,
                )
            )
        return running

    @staticmethod
    def kill(running: RunningPod, sig: int = signal.SIGKILL) -> None:
        for c in running.containers:
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, sig)

    @staticmethod
    def container_status(c: RunningContainer, image: str) -> dict[str, Any]:
        code = c.proc.poll()
        base = {
            "name": c.name,
            "image": image,
            "imageID": "",
            "restartCount": 0,
            "started": code is None,
            "ready": code is None,
            "containerID": f"local://{c.proc.pid}",
        }
        if code is None:
            return {**base, "state": {"running": {"startedAt": c.started}}}
        exit_code = 128 - code if code < 0 else code  # killed by signal N -> exit code 128+N
        message = c.termination_path.read_text(errors="replace")[:4096] if c.termination_path.exists() else ""
        if not message and exit_code != 0 and c.policy == "FallbackToLogsOnError" and c.log_path.exists():
            lines = c.log_path.read_text(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        term = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": c.started,
            "finishedAt": _now(),
            "containerID": base["containerID"],
        }
        if message:
            term["message"] = message
        return {**base, "state": {"terminated": term}}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
