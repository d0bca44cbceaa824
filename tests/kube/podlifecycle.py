"""The kubelet's container lifecycle of one running pod: init containers, native sidecars, stopping.

As on a 1.29+ kubelet: plain init containers run one at a time in spec order, each to
completion before anything else starts (a failed one fails the pod under ``restartPolicy:
Never``, else it is restarted); a native sidecar (an init container with ``restartPolicy:
Always``) starts in its place and the next one follows at once; it is restarted when it exits
early, and gets SIGTERM, then SIGKILL after the grace period, once every main container has
exited. On deletion the main containers get SIGTERM first, the sidecars once those exited. No
probes: a sidecar counts as started once its process runs. ``Kubelet.advance`` calls ``advance``
on every pass of the node loop; nothing here blocks.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.kube.podrules import grace_seconds

if TYPE_CHECKING:
    from tests.kube.runningpod import RunningContainer, RunningPod

# seconds before an exited sidecar or a failed init container is restarted (kubelet: 10 s, doubling)
RESTART_DELAY = 1.0

Launch = Callable[[dict[str, Any], int], "RunningContainer"]  # (container spec, restart count)


def is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def advance(pod: dict[str, Any], running: RunningPod, launch: Launch) -> None:
    """One step: start what may start now, restart what must, stop the sidecars when it is time."""
    spec = pod["spec"]
    inits = spec.get("initContainers") or []
    now = time.monotonic()
    if running.stopping:
        _stop_sidecars_when_mains_exited(pod, running)
        return
    mains_done = running.initialized and all(c.poll() is not None for c in running.containers)
    if not mains_done:  # sidecars that exited early are restarted (their restartPolicy is Always)
        for i, c in enumerate(running.init_containers):
            if c.sidecar and c.poll() is not None and now - (c.exited_at or now) >= RESTART_DELAY:
                running.init_containers[i] = launch(inits[i], c.restart_count + 1)
    while not running.initialized and not running.init_failed:
        started = len(running.init_containers)
        if started:
            last = running.init_containers[-1]
            code = last.poll()
            if not last.sidecar and code is None:
                return  # a plain init container runs to completion before anything else starts
            if not last.sidecar and code != 0:
                if spec.get("restartPolicy", "Always") == "Never":
                    running.init_failed = True
                    break
                if now - (last.exited_at or now) >= RESTART_DELAY:
                    running.init_containers[-1] = launch(inits[started - 1], last.restart_count + 1)
                return
        if started == len(inits):
            for container in spec["containers"]:
                running.containers.append(launch(container, 0))
            running.initialized = True
            break
        running.init_containers.append(launch(inits[started], 0))
    _stop_sidecars_when_mains_exited(pod, running)


def _stop_sidecars_when_mains_exited(pod: dict[str, Any], running: RunningPod) -> None:
    others = [c for c in running.all_containers if not c.sidecar]
    finished = running.initialized or running.init_failed or running.stopping
    if finished and all(c.poll() is not None for c in others) and not running.sidecars_stopped:
        running.sidecars_stopped = True
        if running.stop_deadline is None:
            running.stop_deadline = time.monotonic() + grace_seconds(pod)
        for c in running.init_containers:
            if c.sidecar and c.poll() is None:
                c.handle.signal(signal.SIGTERM)
    if running.stop_deadline is not None and time.monotonic() >= running.stop_deadline:
        for c in running.all_containers:
            c.handle.signal(signal.SIGKILL)


def done(running: RunningPod) -> bool:
    """Every container exited and none will start any more."""
    started_all = running.initialized or running.init_failed or running.stopping
    return started_all and all(c.poll() is not None for c in running.all_containers)


def terminate(pod: dict[str, Any], running: RunningPod) -> None:
    """Pod deletion: SIGTERM to the main (and running plain init) containers, to the sidecars once
    those have exited, SIGKILL to what is left when the grace period is over."""
    if running.stop_deadline is None:
        running.stop_deadline = time.monotonic() + grace_seconds(pod)
        for c in running.all_containers:
            if not c.sidecar:
                c.handle.signal(signal.SIGTERM)
    _stop_sidecars_when_mains_exited(pod, running)
