"""The local node's container runtime: podman (Debian's 4.3) with runc, no registry.

``run_args`` turns a container's effective settings into ``podman run`` arguments (pure);
``Podman`` runs, signals, inspects and removes containers; ``PodmanContainer`` is one running
container as the kubelet sees it (``poll``/``signal``/``wait``, exit code, OOMKilled, logs).

Facts this relies on (checked on the CI machine, docs/testing.md): the default crun fails
("cgroups in hybrid mode not supported") so every call passes ``--runtime runc``; every container
needs explicit ``--ulimit nofile=1024:1024 --ulimit nproc=4096:4096``; read-only root, bind mounts
with real permission checks, tmpfs, ``--memory`` (cgroup v1) and ``--network`` work. Containers
share the host's network namespace (pods reach the local API server on 127.0.0.1), which is the
one deliberate difference from a pod network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kube import podrules
from tests.kube.podrules import ConfigError, Security

PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
OWNER_LABEL = "dev.benchcal.local-kubelet"
CGROUPS = Path("/sys/fs/cgroup")
POD_CGROUPS = "benchcal-kubelet"  # like the kubelet's kubepods slice: one pod<uid> cgroup per pod


PODMAN_SECCOMP = Path("/usr/share/containers/seccomp.json")
# moby's / containerd's default profile allows these only with CAP_SYS_ADMIN; podman's own
# default profile allows them to everyone (for rootless containers), which would let code in a
# pod create namespaces that it cannot create on a real node.
SYS_ADMIN_SYSCALLS = (
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
    "perf_event_open", "pivot_root", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
    "setns", "syslog", "umount", "umount2", "unshare",
)  # fmt: skip
CLONE_NAMESPACE_FLAGS = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
ENOSYS = 38


def runtime_default_profile(podman_profile: dict[str, Any]) -> dict[str, Any]:
    """containerd's RuntimeDefault seccomp profile, derived from podman's (pure).

    Same allow-list, except that the namespace and mount syscalls need CAP_SYS_ADMIN; without it
    ``clone`` may not ask for new namespaces and ``clone3`` answers ENOSYS (so libc falls back to
    ``clone``), exactly as in moby's profiles/seccomp/default.json that containerd ships.
    """
    profile = json.loads(json.dumps(podman_profile))
    profile["defaultErrnoRet"] = 1  # EPERM, as moby's profile (podman answers ENOSYS)
    profile.pop("defaultErrno", None)
    gated = set(SYS_ADMIN_SYSCALLS)
    for rule in profile["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("includes") and not rule.get("args"):
            rule["names"] = [n for n in rule["names"] if n not in gated]
    profile["syscalls"] += [
        {"names": sorted(gated), "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
    ]
    return profile


def write_runtime_default_profile(path: Path) -> Path:
    path.write_text(json.dumps(runtime_default_profile(json.loads(PODMAN_SECCOMP.read_text()))))
    return path


def missing() -> str | None:
    """What the container runtime lacks on this machine (None: podman and runc are installed)."""
    absent = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (make images installs them from Debian)"
    if not PODMAN_SECCOMP.exists():
        return (
            f"{PODMAN_SECCOMP} (podman's seccomp profile, package golang-github-containers-common) is missing"
        )
    return None


@dataclass(frozen=True)
class ImageInfo:
    id: str
    user: str
    entrypoint: list[str] | None
    cmd: list[str] | None


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False
    tmpfs: bool = False
    tmpfs_size: int | None = None


def run_args(
    *,
    name: str,
    image: str,
    argv: list[str],
    env: dict[str, str],
    mounts: list[Mount],
    sec: Security,
    image_user: str,
    hostname: str,
    log_path: Path,
    owner: str,
    seccomp_profile: Path | None = None,
    cgroup_parent: str | None = None,
    memory: int | None = None,
    cpus: float | None = None,
    cpu_shares: int | None = None,
    working_dir: str | None = None,
) -> list[str]:
    """``podman run -d`` arguments for one container (pure: tests assert on them)."""
    args = ["run", "--detach", "--pull=never", "--name", name, "--label", f"{OWNER_LABEL}={owner}", *ULIMITS]
    args += ["--network=host", "--hostname", hostname, "--systemd=false"]
    args += ["--log-driver=k8s-file", f"--log-opt=path={log_path}"]
    if cgroup_parent:
        args.append(f"--cgroup-parent={cgroup_parent}")
    if sec.user is not None or sec.group is not None:
        user = str(sec.user) if sec.user is not None else (image_user.split(":", 1)[0] or "0")
        args += ["--user", user + (f":{sec.group}" if sec.group is not None else "")]
    for gid in sec.groups:
        args += ["--group-add", str(gid)]
    if sec.read_only_root:
        args += ["--read-only", "--read-only-tmpfs=false"]  # podman would add writable /tmp, /run
    if sec.privileged:
        args.append("--privileged")
    elif "ALL" in sec.capabilities:
        args.append("--cap-add=all")
    else:  # exactly the effective set (containerd's defaults - drop + add), not podman's defaults
        args += ["--cap-drop=all", *(f"--cap-add={c}" for c in sec.capabilities)]
    if sec.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    if sec.seccomp == "Unconfined" or sec.privileged:
        args += ["--security-opt", "seccomp=unconfined"]
    elif sec.seccomp == "RuntimeDefault":
        if seccomp_profile is not None:
            args += ["--security-opt", f"seccomp={seccomp_profile}"]
    else:
        raise ConfigError(
            "CreateContainerConfigError", f"seccomp profile {sec.seccomp} is not available on the local node"
        )
    if memory is not None:
        args += [f"--memory={memory}", f"--memory-swap={memory}"]  # no swap, as on a kubelet node
    if cpus is not None:
        args.append(f"--cpus={cpus:g}")
    if cpu_shares is not None:
        args.append(f"--cpu-shares={cpu_shares}")
    for m in mounts:
        if m.tmpfs:
            opts = ["rw", "exec", "nosuid", "nodev", "mode=0777"] + (
                [f"size={m.tmpfs_size}"] if m.tmpfs_size else []
            )
            args += ["--tmpfs", f"{m.target}:{','.join(opts)}"]
        else:
            spec = f"type=bind,source={m.source},destination={m.target}" + (",ro=true" if m.read_only else "")
            args += ["--mount", spec]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    if working_dir:
        args += ["--workdir", working_dir]
    if not argv:
        raise ConfigError(
            "CreateContainerError",
            "no command specified: the image has no ENTRYPOINT or CMD and the container sets no command",
        )
    args += ["--entrypoint", json.dumps(argv), image]
    return args


class CriLog:
    """Follows conmon's k8s-file log (``<time> <stream> <F|P> <text>``) into a plain-text log."""

    def __init__(self, cri_path: Path, out_path: Path):
        self.cri_path, self.out_path = cri_path, out_path
        self.offset = 0
        self.rest = b""

    def pump(self) -> None:
        try:
            size = self.cri_path.stat().st_size
        except FileNotFoundError:
            return
        if size <= self.offset:
            return
        with self.cri_path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        self.offset = size
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        out = bytearray()
        for line in lines:
            parts = line.split(b" ", 3)
            if len(parts) < 3:
                continue
            text = parts[3] if len(parts) == 4 else b""
            out += text + (b"\n" if parts[2] == b"F" else b"")
        with self.out_path.open("ab") as f:
            f.write(out)


class PodCgroup:
    """The pod's cgroup (the kubelet's ``kubepods/pod<uid>``), parent of its containers' cgroups.

    On cgroup v1 podman 4.3 never reports OOMKilled, so a single-container pod's memory limit is set
    here instead of on the container, and an OOM event of this cgroup (an eventfd on
    ``memory.oom_control``, registered before the container starts) marks the container OOMKilled.
    """

    def __init__(self, uid: str, containers: list[dict[str, Any]]):
        self.parent = f"/{POD_CGROUPS}/pod{uid}"
        limits = [podrules.memory_limit(c) for c in containers]
        self.limit = sum(limits) if limits and None not in limits else None  # type: ignore[arg-type]
        memory = CGROUPS / "memory"
        self.v1 = (memory / "cgroup.event_control").exists()
        self.own_limit = self.v1 and len(containers) == 1 and self.limit is not None
        self.oom_events = 0
        self._fds: list[int] = []
        if not self.v1:
            return
        path = memory / self.parent.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        if self.own_limit:
            (path / "memory.limit_in_bytes").write_text(str(self.limit))
            if (path / "memory.memsw.limit_in_bytes").exists():  # no swap, as on a kubelet node
                (path / "memory.memsw.limit_in_bytes").write_text(str(self.limit))
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        ofd = os.open(path / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        self._fds = [efd, ofd]
        (path / "cgroup.event_control").write_text(f"{efd} {ofd}")

    def container_memory(self, container: dict[str, Any]) -> int | None:
        """The container's own --memory (None where this pod cgroup holds the limit)."""
        return None if self.own_limit else podrules.memory_limit(container)

    def oom_killed(self) -> bool:
        if self._fds:
            with contextlib.suppress(BlockingIOError, OSError):
                self.oom_events += os.eventfd_read(self._fds[0])
        return self.oom_events > 0

    def remove(self) -> None:
        self.oom_killed()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        for controller in CGROUPS.iterdir():
            root = controller / self.parent.lstrip("/")
            if not root.is_dir():
                continue
            for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


class Podman:
    def __init__(self, owner: str):
        self.owner = owner  # label value marking this node's containers (cleanup)
        self.created: list[str] = []

    @staticmethod
    def _call(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)

    def image(self, name: str) -> ImageInfo | None:
        proc = self._call("image", "inspect", name)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)[0]
        config = data.get("Config") or {}
        return ImageInfo(data["Id"], config.get("User") or "", config.get("Entrypoint"), config.get("Cmd"))

    def run(self, args: list[str]) -> str:
        proc = self._call(*args, timeout=300)
        name = args[args.index("--name") + 1]
        if proc.returncode == 0:
            cid = proc.stdout.strip().splitlines()[-1]
            self.created.append(cid)
            return cid
        self.created.append(name)
        if proc.returncode in (126, 127):  # the runtime could not exec the command: StartError
            raise StartError(proc.stderr.strip() or proc.stdout.strip())
        raise ConfigError(
            "CreateContainerError", proc.stderr.strip() or f"podman run exited {proc.returncode}"
        )

    def state(self, cid: str) -> dict[str, Any]:
        proc = self._call("container", "inspect", cid)
        if proc.returncode != 0:
            return {}
        data = json.loads(proc.stdout)[0]
        return {**data.get("State", {}), "ImageID": data.get("Image", "")}

    def kill(self, cid: str, sig: int) -> None:
        self._call("kill", "--signal", str(int(sig)), cid, timeout=60)

    def remove(self, cid: str) -> None:
        self._call("rm", "--force", "--time=0", cid, timeout=120)
        with contextlib.suppress(ValueError):
            self.created.remove(cid)

    def remove_all(self) -> None:
        for cid in list(self.created):
            self.remove(cid)


class StartError(Exception):
    """The container was created but its process could not start (reason StartError, exit 128)."""


class PodmanContainer:
    """One container of a running pod; ``poll()`` is None while it runs, else its exit code."""

    def __init__(self, runtime: Podman, cid: str, log: CriLog, oom_killed: Any = None):
        self.runtime, self.id, self.log = runtime, cid, log
        self.oom_killed = oom_killed or (lambda: False)
        self.waiter = subprocess.Popen(
            [*PODMAN, "wait", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.final: dict[str, Any] | None = None

    def poll(self) -> int | None:
        self.log.pump()
        if self.final is not None:
            return self.final["ExitCode"]
        if self.waiter.poll() is None:
            return None
        state = self.runtime.state(self.id)
        self.log.pump()
        code = int(state.get("ExitCode", 137 if not state else 0))
        self.final = {
            "ExitCode": code,
            "OOMKilled": code != 0 and (bool(state.get("OOMKilled")) or self.oom_killed()),
            "StartedAt": state.get("StartedAt", ""),
            "FinishedAt": state.get("FinishedAt", ""),
            "ImageID": state.get("ImageID", ""),
        }
        self.runtime.remove(self.id)
        return self.final["ExitCode"]

    def signal(self, sig: int = signal.SIGKILL) -> None:
        if self.poll() is None:
            self.runtime.kill(self.id, sig)

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"podman wait {self.id}", timeout or 0)
            time.sleep(0.1)

    @property
    def reason(self) -> str:
        code = self.poll()
        if self.final and self.final["OOMKilled"]:
            return "OOMKilled"
        return "Completed" if code == 0 else "Error"

    @property
    def container_id(self) -> str:
        return f"podman://{self.id}"

    @property
    def image_id(self) -> str:
        return (self.final or {}).get("ImageID", "")
