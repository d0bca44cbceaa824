"""What the kubelet stand-in holds for a started pod: a handle per container (a local process, or
a podman container: ``podman.PodmanContainer``), the containers as started, and the pod's state
between passes of the node loop (volumes, cgroup, init progress, a stop in progress)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.kube import podman, volumes


class Handle(Protocol):
    def poll(self) -> int | None: ...  # exit code (128+N when killed by signal N) once exited
    def signal(self, sig: int) -> None: ...
    def wait(self, timeout: float | None = None) -> None: ...
    @property
    def reason(self) -> str: ...
    @property
    def container_id(self) -> str: ...
    @property
    def image_id(self) -> str: ...


class ProcessHandle:
    def __init__(self, proc: subprocess.Popen, start_error: str = ""):
        self.proc = proc
        self.start_error = start_error

    def poll(self) -> int | None:
        code = self.proc.poll()
        return None if code is None else (128 - code if code < 0 else code)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float | None = None) -> None:
        self.proc.wait(timeout)

    @property
    def reason(self) -> str:
        if self.start_error:
            return "StartError"
        return "Completed" if self.poll() == 0 else "Error"

    @property
    def container_id(self) -> str:
        return f"local://{self.proc.pid}"

    @property
    def image_id(self) -> str:
        return ""


@dataclass
class RunningContainer:
    name: str
    handle: Handle
    log_path: Path
    termination_path: Path
    policy: str
    started: str
    path_map: list[tuple[str, str]] = field(default_factory=list)  # mountPath -> host path
    sidecar: bool = False  # an init container with restartPolicy Always
    restart_count: int = 0
    exited_at: float | None = None  # time.monotonic() when first seen exited (restart backoff)

    def poll(self) -> int | None:
        code = self.handle.poll()
        if code is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return code


@dataclass
class RunningPod:
    namespace: str
    name: str
    uid: str
    containers: list[RunningContainer] = field(default_factory=list)
    disrupted: str = ""  # DisruptionTarget reason, when a fault or an eviction killed it
    disruption_message: str = ""
    status_reason: str = ""  # pod status.reason (Evicted)
    stop_deadline: float | None = None  # SIGTERM sent; SIGKILL at this time.monotonic()
    volumes: dict[str, volumes.Volume] = field(default_factory=dict)
    cgroup: podman.PodCgroup | None = None
    init_containers: list[RunningContainer] = field(default_factory=list)  # started so far, spec order
    initialized: bool = False  # every plain init container succeeded, every sidecar started
    init_failed: bool = False  # a plain init container failed under restartPolicy Never
    sidecars_stopped: bool = False  # SIGTERM sent to the sidecars
    pod_dir: Path | None = None
    command_override: list[str] | None = None

    @property
    def all_containers(self) -> list[RunningContainer]:
        return [*self.init_containers, *self.containers]

    @property
    def stopping(self) -> bool:
        return self.stop_deadline is not None or bool(self.disrupted)
