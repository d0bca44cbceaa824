"""The node side of the job runner: starts pods' processes, reports their status, injects faults.

``NodeAgent`` is mixed into ``JobRunner`` (they share one lock and the in-process API); it uses
``Kubelet`` for the processes themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.types import now_iso
from tests.kube.kubelet import Kubelet, RunningPod, rewrite_paths

log = logging.getLogger(__name__)


class NodeAgent:
    """Expects: api, pods_t, node, running, history, first_seen, start_delay, max_parallel,
    kubelet, command_override and _lock (set by JobRunner.__init__)."""

    def host_path(self, pod_uid: str, path: str) -> Path | None:
        """Where ``path`` as a pod's containers saw it lives on this machine (None: pod unknown)."""
        running = self.history.get(pod_uid)
        if running is None:
            return None
        return Path(rewrite_paths(path, running.containers[0].path_map))

    # ------------------------------------------------------------ faults
    def disrupt_pod(self, namespace: str, name: str, reason: str = "TerminationByKubelet") -> None:
        """Kill a running pod as a preemption/eviction would: DisruptionTarget=True, phase Failed."""
        with self._lock:
            pod = self.api.get(self.pods_t, namespace, name)
            running = self.running.get(pod["metadata"]["uid"])
            if running is not None:
                running.disrupted = reason
                Kubelet.kill(running)

    def vanish_node(self) -> list[str]:
        """The node disappears: every pod on it fails with DisruptionTarget (DeletionByPodGC)."""
        with self._lock:
            names = []
            for running in list(self.running.values()):
                running.disrupted = "DeletionByPodGC"
                Kubelet.kill(running)
                names.append(f"{running.namespace}/{running.name}")
            return names

    # ------------------------------------------------------------ kubelet side
    def _sync_pods(self, pods: list[dict[str, Any]], live: set[str]) -> None:
        for pod in pods:
            uid = pod["metadata"]["uid"]
            phase = (pod.get("status") or {}).get("phase")
            if not pod["spec"].get("nodeName"):
                pod["spec"]["nodeName"] = self.node  # the scheduler: one node
                self._try(
                    lambda p=pod: self.api.update(
                        self.pods_t, p["metadata"]["namespace"], p["metadata"]["name"], p
                    )
                )
                continue
            if pod["spec"]["nodeName"] != self.node:
                continue
            running = self.running.get(uid)
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate(pod, running)
                continue
            if phase == "Pending" and running is None:
                self.first_seen.setdefault(uid, time.monotonic())
                busy = sum(
                    1 for r in self.running.values() if any(c.proc.poll() is None for c in r.containers)
                )
                if busy < self.max_parallel and time.monotonic() - self.first_seen[uid] >= self.start_delay:
                    self._start(pod)
            elif (
                running is not None
                and phase == "Running"
                and all(c.proc.poll() is not None for c in running.containers)
            ):
                self._finish(pod, running)
        for uid in [u for u in self.running if u not in live]:
            Kubelet.kill(self.running.pop(uid))

    def _start(self, pod: dict[str, Any]) -> None:
        override = None
        if self.command_override is not None:
            override = self.command_override(pod, pod["spec"]["containers"][0])
        running = self.kubelet.start(pod, override)
        self.running[pod["metadata"]["uid"]] = running
        self.history[pod["metadata"]["uid"]] = running
        t = now_iso()
        images = {c["name"]: c.get("image", "") for c in pod["spec"]["containers"]}
        pod["status"] = {
            **(pod.get("status") or {}),
            "phase": "Running",
            "startTime": t,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "conditions": [
                {"type": c, "status": "True", "lastTransitionTime": t}
                for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [Kubelet.container_status(c, images[c.name]) for c in running.containers],
        }
        self._try(
            lambda: self.api.update(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status"
            )
        )

    def _finish(self, pod: dict[str, Any], running: RunningPod) -> None:
        images = {c["name"]: c.get("image", "") for c in pod["spec"]["containers"]}
        statuses = [Kubelet.container_status(c, images[c.name]) for c in running.containers]
        ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses) and not running.disrupted
        t = now_iso()
        conds = [
            {
                "type": c,
                "status": "False" if c in ("Ready", "ContainersReady") else "True",
                "lastTransitionTime": t,
                **(
                    {"reason": "PodCompleted" if ok else "PodFailed"}
                    if c in ("Ready", "ContainersReady")
                    else {}
                ),
            }
            for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        if running.disrupted:
            conds.append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": running.disrupted,
                    "message": f"{running.disrupted}: the local job runner injected a disruption",
                    "lastTransitionTime": t,
                }
            )
        pod["status"] = {
            **pod["status"],
            "phase": "Succeeded" if ok else "Failed",
            "conditions": conds,
            "containerStatuses": statuses,
        }
        self._try(
            lambda: self.api.update(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status"
            )
        )
        self.running.pop(pod["metadata"]["uid"], None)

    def _terminate(self, pod: dict[str, Any], running: RunningPod | None) -> None:
        """A pod being deleted: stop its processes, record the outcome, then remove it (grace 0)."""
        if running is not None:
            Kubelet.kill(running, sig=15)
            deadline = time.monotonic() + 2
            while any(c.proc.poll() is None for c in running.containers) and time.monotonic() < deadline:
                time.sleep(0.05)
            Kubelet.kill(running)
            for c in running.containers:
                c.proc.wait()
            if (pod.get("status") or {}).get("phase") == "Running":
                self._finish(pod, running)
            self.running.pop(pod["metadata"]["uid"], None)
        elif (pod.get("status") or {}).get("phase") in ("Pending", "Running"):
            pod["status"] = {**pod.get("status", {}), "phase": "Failed"}
            self._try(
                lambda: self.api.update(
                    self.pods_t,
                    pod["metadata"]["namespace"],
                    pod["metadata"]["name"],
                    pod,
                    subresource="status",
                )
            )
        self._try(
            lambda: self.api.delete(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], {"gracePeriodSeconds": 0}
            )
        )

    @staticmethod
    def _try(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except ApiError as exc:
            log.debug("job runner write skipped: %s", exc.message)
