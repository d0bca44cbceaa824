"""The node side of the job runner: starts pods' containers, reports their status, injects faults.

``NodeAgent`` is mixed into ``JobRunner`` (they share one lock and the in-process API); it uses
``Kubelet`` for the containers themselves. Like the kubelet it keeps a pod Pending (with the
container's waiting reason and a Warning event) while its volumes, image or config cannot be set
up, retrying every ``retry_interval`` seconds; evicts a pod whose emptyDir outgrows its
``sizeLimit``; and stops a deleted pod with SIGTERM, then SIGKILL after its grace period.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube import podstatus
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.types import now_iso
from tests.kube.events import EventRecorder
from tests.kube.kubelet import Kubelet
from tests.kube.podrules import ConfigError
from tests.kube.podspec import rewrite_paths
from tests.kube.runningpod import RunningPod

EVICTION_CHECK_SECONDS = 1.0

log = logging.getLogger(__name__)


class NodeAgent:
    """Expects: api, pods_t, node, running, history, first_seen, start_delay, max_parallel,
    kubelet, command_override and _lock (set by JobRunner.__init__)."""

    retry_interval = 2.0  # the kubelet retries a pod it could not start (it backs off up to 5 min)
    _waiting: dict[str, tuple[float, str]]  # pod uid -> (next try, last reported waiting reason)
    _next_eviction_check = 0.0

    def host_path(self, pod_uid: str, path: str) -> Path | None:
        """Where ``path`` as a pod's containers saw it lives on this machine (None: pod unknown)."""
        running = self.history.get(pod_uid)
        if running is None:
            return None
        return Path(rewrite_paths(path, (running.containers or running.all_containers)[0].path_map))

    # ------------------------------------------------------------ faults
    def disrupt_pod(self, namespace: str, name: str, reason: str = "TerminationByKubelet") -> None:
        """Kill a running pod as a preemption/eviction would: DisruptionTarget=True, phase Failed."""
        with self._lock:
            pod = self.api.get(self.pods_t, namespace, name)
            running = self.running.get(pod["metadata"]["uid"])
            if running is not None:
                running.disrupted = reason
                Kubelet.kill(running)
                running.stop_deadline = time.monotonic()

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
        if not hasattr(self, "_waiting"):
            self._waiting = {}
        check_evictions = time.monotonic() >= self._next_eviction_check
        if check_evictions:
            self._next_eviction_check = time.monotonic() + EVICTION_CHECK_SECONDS
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
                    1 for r in self.running.values() if any(c.poll() is None for c in r.all_containers)
                )
                ready = time.monotonic() - self.first_seen[uid] >= self.start_delay
                retry_at = self._waiting.get(uid, (0.0, ""))[0]
                if busy < self.max_parallel and ready and time.monotonic() >= retry_at:
                    self._start(pod)
            elif running is not None and phase in ("Pending", "Running"):
                if check_evictions and not running.disrupted:
                    self._check_ephemeral_storage(running)
                try:
                    self.kubelet.advance(pod, running)  # init containers, sidecars
                except ConfigError as err:  # a later container's image or config: start over
                    self.running.pop(uid, None)
                    self.kubelet.abort(running)
                    self._report_waiting(pod, err)
                    continue
                if self.kubelet.done(running):
                    self._finish(pod, running)
                else:
                    self._report_progress(pod, running)
        for uid in [u for u in self.running if u not in live]:
            gone = self.running.pop(uid)
            Kubelet.kill(gone)
            self.kubelet.release(gone)
        for uid in [u for u in self._waiting if u not in live]:
            self._waiting.pop(uid)

    def _start(self, pod: dict[str, Any]) -> None:
        override = None
        if self.command_override is not None:
            override = self.command_override(pod, pod["spec"]["containers"][0])
        try:
            running = self.kubelet.start(pod, override)
        except ConfigError as err:
            self._report_waiting(pod, err)
            return
        self._waiting.pop(pod["metadata"]["uid"], None)
        self.running[pod["metadata"]["uid"]] = running
        self.history[pod["metadata"]["uid"]] = running
        self._report_progress(pod, running)

    def _report_progress(self, pod: dict[str, Any], running: RunningPod) -> None:
        """Pending while init containers run, Running once every sidecar started and the main
        containers did; written only when something a client sees changed."""
        statuses = podstatus.statuses(pod, running)
        phase = "Running" if running.initialized else "Pending"
        old = pod.get("status") or {}

        def seen(status: dict[str, Any]) -> list[Any]:
            return [status.get("phase")] + [
                (c["name"], next(iter(c["state"])), c.get("restartCount", 0))
                for key in ("initContainerStatuses", "containerStatuses")
                for c in status.get(key) or []
            ]

        new = {"phase": phase, **statuses}
        if seen(old) == seen(new):
            return
        t = now_iso()
        ready = {"PodScheduled": True, "Initialized": running.initialized}
        ready["ContainersReady"] = ready["Ready"] = running.initialized
        pod["status"] = {
            **old,
            "phase": phase,
            "startTime": old.get("startTime") or t,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "conditions": [
                {"type": c, "status": "True" if ok else "False", "lastTransitionTime": t}
                for c, ok in ready.items()
            ],
            **statuses,
        }
        self._try(
            lambda: self.api.update(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status"
            )
        )

    def _report_waiting(self, pod: dict[str, Any], err: ConfigError) -> None:
        """Pending, with the container's waiting reason (and a Warning event when it changes)."""
        uid = pod["metadata"]["uid"]
        _, last = self._waiting.get(uid, (0.0, ""))
        self._waiting[uid] = (time.monotonic() + self.retry_interval, f"{err.reason}: {err.message}")
        if last == f"{err.reason}: {err.message}":
            return
        blocked = err.reason == "ContainerCreating"  # volumes: no container could be created yet
        statuses = [podstatus.waiting_status(c, err) for c in pod["spec"]["containers"]]
        t = now_iso()
        pod["status"] = {
            **(pod.get("status") or {}),
            "phase": "Pending",
            "hostIP": "127.0.0.1",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                {"type": "Initialized", "status": "True", "lastTransitionTime": t},
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "lastTransitionTime": t,
                },
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": t},
            ],
            "containerStatuses": statuses,
        }
        self._try(
            lambda: self.api.update(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status"
            )
        )
        reason = "FailedMount" if blocked else ("BackOff" if err.reason == "ImagePullBackOff" else "Failed")
        message = (
            err.message
            if blocked or err.reason == "ImagePullBackOff"
            else f"Error: {err.reason}: {err.message}"
        )
        self._event(pod, reason, message)

    def _event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        if not hasattr(self, "_kubelet_events"):
            self._kubelet_events = EventRecorder(self.api, "kubelet")
        self._kubelet_events.warning({**pod, "apiVersion": "v1", "kind": "Pod"}, reason, message)

    def _check_ephemeral_storage(self, running: RunningPod) -> None:
        """The kubelet's local-storage eviction: an emptyDir over its sizeLimit evicts the pod at once."""
        for vol in running.volumes.values():
            if vol.kind != "emptyDir" or vol.size_limit is None or vol.tmpfs:
                continue
            used = sum(
                os.lstat(os.path.join(d, f)).st_blocks * 512
                for d, _, files in os.walk(vol.path)
                for f in files
            )
            if used > vol.size_limit:
                running.disrupted = "TerminationByKubelet"
                running.status_reason = "Evicted"
                running.disruption_message = (
                    f'Usage of EmptyDir volume "{vol.name}" exceeds the limit "{vol.size_text}". '
                )
                Kubelet.kill(running)  # grace period 0 for local-storage evictions
                return

    def _finish(self, pod: dict[str, Any], running: RunningPod) -> None:
        """The phase comes from the main containers (a sidecar stopped with SIGTERM does not count)."""
        statuses = podstatus.statuses(pod, running)
        ok = (
            running.initialized
            and all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses["containerStatuses"])
            and not running.disrupted
        )
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
                    "message": running.disruption_message
                    or f"{running.disrupted}: the local job runner injected a disruption",
                    "lastTransitionTime": t,
                }
            )
        pod["status"] = {
            **(pod.get("status") or {}),
            "phase": "Succeeded" if ok else "Failed",
            "conditions": conds,
            **statuses,
        }
        if running.status_reason:
            pod["status"].update(reason=running.status_reason, message=running.disruption_message)
        self._try(
            lambda: self.api.update(
                self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status"
            )
        )
        self.running.pop(pod["metadata"]["uid"], None)
        self.kubelet.release(running)

    def _terminate(self, pod: dict[str, Any], running: RunningPod | None) -> None:
        """A pod being deleted: SIGTERM, SIGKILL once its grace period is over (checked on every
        pass, the loop never blocks), record the outcome, then remove it (grace 0)."""
        if running is not None:
            self.kubelet.terminate(pod, running)
            if any(c.poll() is None for c in running.all_containers):
                return
            if (pod.get("status") or {}).get("phase") in ("Pending", "Running"):
                self._finish(pod, running)
            self.running.pop(pod["metadata"]["uid"], None)
            self.kubelet.release(running)
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
