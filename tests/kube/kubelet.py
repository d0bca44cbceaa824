"""The kubelet stand-in: runs a Pod's containers, as local processes or as podman containers.

Two runtimes (docs/testing.md, "The local job runner"):

- ``podman``: each container runs in its image with real mounts, the effective security context
  (user and groups, runAsNonRoot check, read-only root, no_new_privs, capabilities, seccomp), memory
  limits in a pod cgroup (OOMKilled), the termination-message file, SIGTERM then SIGKILL after the
  grace period; the kubelet's image-pull, volume and config errors keep the pod Pending with the
  real waiting reasons. The pod network is the host's (the pod reaches the API on 127.0.0.1).
- ``process`` (fast tests): the command runs on this machine with the test's PATH, the image is
  ignored, and there is no mount namespace: every argv element, env value and workingDir has each
  volumeMount's mountPath (and the terminationMessagePath) rewritten to the local directory,
  longest prefix first, wherever the mountPath occurs as a whole path component.

Both: volumes as ``volumes.py`` prepares them; env with ``$(VAR)`` expansion as Kubernetes does,
fieldRef (metadata.name/namespace/uid/labels/annotations, spec.nodeName, status.podIP),
secretKeyRef, configMapKeyRef, envFrom (``podspec.py``); termination messages and
FallbackToLogsOnError (``podstatus.py``); the handles of what runs: ``runningpod.py``.
Init containers and native sidecars: ``podlifecycle.py`` (``advance``, on every pass of the node loop).
API credentials come only from a projected ServiceAccount token volume the container mounts
(ServiceAccount admission adds it): in containers, in-cluster config (``KUBERNETES_SERVICE_HOST``
and the token directory); for processes, ``KUBECONFIG`` pointing at a kubeconfig made from that
pod's token (satoken.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.kube import podlifecycle, podman, podrules, volumes
from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError
from tests.kube.podlifecycle import is_sidecar
from tests.kube.podrules import ConfigError
from tests.kube.podspec import (
    container_base_env,
    container_env,
    expand_vars,
    field_ref,
    hostname,
    process_base_env,
    rewrite_paths,
)
from tests.kube.podstatus import now
from tests.kube.runningpod import Handle, ProcessHandle, RunningContainer, RunningPod
from tests.kube.satoken import PodCredentials, token_mount

RUNTIMES = ("process", "podman")


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
        runtime: str = "process",
    ):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: choose one of {RUNTIMES}")
        self.api = api
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.credentials = credentials
        self.pvc_dirs = dict(pvc_dirs or {})
        self.extra_env = dict(extra_env or {})
        self.runtime = runtime
        owner = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:10]
        self.podman = podman.Podman(owner) if runtime == "podman" else None
        self._pull_attempts: dict[tuple[str, str], int] = {}  # (pod uid, container) -> failed pulls
        self.seccomp_profile: Path | None = None
        if self.podman is not None:
            if reason := podman.missing():
                raise RuntimeError(f"the podman runtime needs podman and runc: {reason}")
            work_dir.mkdir(parents=True, exist_ok=True)
            self.seccomp_profile = podman.write_runtime_default_profile(
                work_dir / "seccomp-runtime-default.json"
            )

    # ------------------------------------------------------------ lookups (volumes.Sources)
    def _read(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get(self.api.type("", "v1", plural), namespace, name)
        except ApiError:
            return None

    def exists(self, plural: str, namespace: str, name: str) -> bool:
        return self._read(plural, namespace, name) is not None

    def data(self, plural: str, namespace: str, name: str) -> dict[str, str] | None:
        obj = self._read(plural, namespace, name)
        if obj is None:
            return None
        data = dict(obj.get("data") or {})
        if plural == "secrets":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        return data

    def claim_dir(self, namespace: str, claim: str) -> Path:
        return volumes.new_claim_dir(self.pvc_dirs.get(claim) or self.work_dir / "pvcs" / namespace / claim)

    def service_account_token(self, pod: dict[str, Any], source: dict[str, Any]) -> str:
        """A token bound to ``pod`` for a projected ``serviceAccountToken`` source."""
        if self.credentials is None:
            raise ConfigError(
                "ContainerCreating",
                "the local node has no credentials source for serviceAccountToken volumes",
            )
        audiences = (source["audience"],) if source.get("audience") else ()
        return self.credentials.token_for(
            pod["metadata"]["namespace"],
            pod["spec"].get("serviceAccountName") or "default",
            pod=pod,
            expiration_seconds=int(source.get("expirationSeconds") or 3607),
            **({"audiences": audiences} if audiences else {}),
        )

    def field(self, pod: dict[str, Any], path: str) -> str:
        return field_ref(pod, path)

    @property
    def api_endpoint(self) -> tuple[str, str] | None:
        """(host, port) of the local API server, as the kubelet puts it in every container."""
        if self.credentials is None:
            return None
        host, _, port = self.credentials.server_url.split("://", 1)[-1].rstrip("/").rpartition(":")
        return host, port

    # ------------------------------------------------------------ start
    def start(self, pod: dict[str, Any], command_override: list[str] | None = None) -> RunningPod:
        """Prepare volumes and start what may start now (``advance``); raises ConfigError while the
        pod must stay Pending. ``command_override`` replaces every container's argv (init
        containers and sidecars too: a stand-in pod runs nothing real)."""
        meta = pod["metadata"]
        pod_dir = self.work_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        pod_dir.mkdir(parents=True, exist_ok=True)
        vols = volumes.prepare(pod, pod_dir, self)
        running = RunningPod(meta["namespace"], meta["name"], meta["uid"], volumes=vols)
        running.pod_dir, running.command_override = pod_dir, command_override
        try:
            if self.podman is not None:
                # the pod cgroup holds what runs at once: the sidecars beside the main containers
                inits = [c for c in pod["spec"].get("initContainers") or [] if is_sidecar(c)]
                running.cgroup = podman.PodCgroup(meta["uid"], [*inits, *pod["spec"]["containers"]])
            self.advance(pod, running)
        except BaseException:
            self.abort(running)
            raise
        return running

    def abort(self, running: RunningPod) -> None:
        """A pod that could not be started (a ConfigError): everything started goes."""
        self.kill(running)
        for c in running.all_containers:
            with contextlib.suppress(Exception):
                c.handle.wait(timeout=30)
        if running.cgroup is not None:
            running.cgroup.remove()
            running.cgroup = None

    def _launch(self, pod, container, running, override, restart_count=0) -> RunningContainer:
        assert running.pod_dir is not None
        start = self._start_container if self.podman is not None else self._start_process
        c = start(pod, container, running.pod_dir, running, override, restart_count)
        c.sidecar, c.restart_count = is_sidecar(container), restart_count
        return c

    def advance(self, pod: dict[str, Any], running: RunningPod) -> None:
        """One step of the pod's container lifecycle (start, restart, stop; podlifecycle.py)."""

        def launch(container: dict[str, Any], restart_count: int) -> RunningContainer:
            return self._launch(pod, container, running, running.command_override, restart_count)

        podlifecycle.advance(pod, running, launch)

    done = staticmethod(podlifecycle.done)
    terminate = staticmethod(podlifecycle.terminate)

    def _paths(self, container: dict[str, Any], vols: dict[str, volumes.Volume]) -> list[tuple[str, str]]:
        out = []
        for m in container.get("volumeMounts") or []:
            if m["name"] not in vols:
                raise ConfigError(
                    "CreateContainerConfigError",
                    f'cannot find volume "{m["name"]}" to mount into container "{container["name"]}"',
                )
            host = vols[m["name"]].path
            if m.get("subPath"):
                host = volumes.sub_path(host, m["subPath"])
            out.append((m["mountPath"].rstrip("/") or "/", str(host).rstrip("/")))
        return sorted(out, key=lambda p: -len(p[0]))

    def _files(self, pod: dict[str, Any], container: dict[str, Any], pod_dir: Path) -> tuple[Path, Path]:
        meta = pod["metadata"]
        term_path = pod_dir / f"termination-{container['name']}"
        term_path.write_text("")
        os.chmod(term_path, 0o666)  # the kubelet creates it world-writable: any uid may write it
        log_path = self.log_dir / meta["namespace"] / meta["name"] / f"{container['name']}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()  # a container that prints nothing has an empty log, not none
        return term_path, log_path

    def _start_process(
        self, pod, container, pod_dir, running, command_override, attempt=0
    ) -> RunningContainer:
        term_path, log_path = self._files(pod, container, pod_dir)
        path_map = self._paths(container, running.volumes)
        path_map.append((container.get("terminationMessagePath", "/dev/termination-log"), str(term_path)))
        path_map.sort(key=lambda p: -len(p[0]))
        kubeconfig = None
        token_volume = token_mount(container)
        if token_volume is not None and self.credentials is not None:
            kubeconfig = self.credentials.kubeconfig_for(
                running.volumes[token_volume].path,
                pod["metadata"]["namespace"],
                pod_dir / f"kubeconfig-{container['name']}",
            )
        base = process_base_env(pod, self.extra_env, kubeconfig)
        env = container_env(pod, container, base, self.data)
        # only what the pod spec says is rewritten; the runner's own values are host paths already
        env = {k: v if base.get(k) == v else rewrite_paths(v, path_map) for k, v in env.items()}
        argv = [
            rewrite_paths(expand_vars(a, env), path_map)
            for a in (container.get("command") or []) + (container.get("args") or [])
        ]
        if command_override is not None:
            argv = command_override
        with log_path.open("ab") as log:
            try:
                if not argv:
                    raise OSError("the process runtime cannot run image entrypoints: set command")
                cwd = rewrite_paths(container.get("workingDir") or str(pod_dir), path_map)
                Path(cwd).mkdir(parents=True, exist_ok=True)
                proc = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
                handle = ProcessHandle(proc)
            except OSError as exc:
                log.write(f"{exc}\n".encode())
                handle = ProcessHandle(subprocess.Popen(["sh", "-c", "exit 128"]), str(exc))
        policy = container.get("terminationMessagePolicy", "File")
        return RunningContainer(container["name"], handle, log_path, term_path, policy, now(), path_map)

    def _start_container(
        self, pod, container, pod_dir, running, command_override, attempt=0
    ) -> RunningContainer:
        assert self.podman is not None and running.cgroup is not None
        vols = running.volumes
        meta, image = pod["metadata"], container.get("image", "")
        info = self.podman.image(image)
        attempts = self._pull_attempts.get((meta["uid"], container["name"]), 0)
        refused = podrules.pull_decision(
            image, container.get("imagePullPolicy", "IfNotPresent"), info is not None, attempts
        )
        if refused is not None:
            self._pull_attempts[(meta["uid"], container["name"])] = attempts + 1
            raise refused
        assert info is not None
        sec = podrules.effective_security(pod, container)
        podrules.verify_run_as_non_root(pod, container, sec, info.user)
        env = container_env(pod, container, container_base_env(self.extra_env, self.api_endpoint), self.data)
        argv = [expand_vars(a, env) for a in podrules.argv(container, info.entrypoint, info.cmd)]
        if command_override is not None:
            argv = command_override
        term_path, log_path = self._files(pod, container, pod_dir)
        path_map = self._paths(container, vols)
        mounts = []
        for m in container.get("volumeMounts") or []:
            vol = vols[m["name"]]
            host = dict(path_map)[m["mountPath"].rstrip("/") or "/"]
            mounts.append(
                podman.Mount(
                    Path(host),
                    m["mountPath"],
                    bool(m.get("readOnly")) or vol.read_only,
                    vol.tmpfs,
                    vol.size_limit,
                )
            )
        mounts.append(
            podman.Mount(term_path, container.get("terminationMessagePath", "/dev/termination-log"))
        )
        name = f"k8s_{container['name']}_{meta['name']}_{meta['namespace']}_{meta['uid'][:8]}_{attempt}"
        args = podman.run_args(
            name=name,
            image=image,
            argv=argv,
            env=env,
            mounts=mounts,
            sec=sec,
            image_user=info.user,
            hostname=hostname(pod),
            log_path=pod_dir / f"{container['name']}.cri",
            owner=self.podman.owner,
            seccomp_profile=self.seccomp_profile,
            cgroup_parent=running.cgroup.parent,
            memory=running.cgroup.container_memory(container),
            cpus=podrules.cpu_limit(container),
            cpu_shares=podrules.cpu_shares(container),
            working_dir=container.get("workingDir"),
        )
        log = podman.CriLog(pod_dir / f"{container['name']}.cri", log_path)
        policy = container.get("terminationMessagePolicy", "File")
        try:
            cid = self.podman.run(args)
        except podman.StartError as exc:
            log_path.open("a").write(f"{exc}\n")
            handle: Handle = ProcessHandle(subprocess.Popen(["sh", "-c", "exit 128"]), str(exc))
            return RunningContainer(container["name"], handle, log_path, term_path, policy, now(), path_map)
        handle = podman.PodmanContainer(self.podman, cid, log, running.cgroup.oom_killed)
        return RunningContainer(container["name"], handle, log_path, term_path, policy, now(), path_map)

    # ------------------------------------------------------------ stop
    @staticmethod
    def kill(running: RunningPod, sig: int = signal.SIGKILL) -> None:
        for c in running.all_containers:
            c.handle.signal(sig)

    def release(self, running: RunningPod) -> None:
        """After the last container exited: the pod's cgroup goes (containers are already removed)."""
        self._pull_attempts = {k: v for k, v in self._pull_attempts.items() if k[0] != running.uid}
        if running.cgroup is not None:
            running.cgroup.remove()

    def shutdown(self) -> None:
        if self.podman is not None:
            self.podman.remove_all()
