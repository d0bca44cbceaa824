"""Job controller + kubelet stand-in for the local API server.

``JobRunner`` reconciles batch/v1 Jobs the way kube-controller-manager's job controller does
(pods with the job-tracking finalizer, counters in status, backoffLimit, podFailurePolicy,
activeDeadlineSeconds, suspend, Indexed completion) and runs the pods on one local "node"
through ``Kubelet``. It is level-triggered: every ``interval`` it re-reads Jobs and Pods
through the in-process API. Faults: ``disrupt_pod``, ``vanish_node``, ``start_delay``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.types import now_iso
from tests.kube.events import EventRecorder
from tests.kube.jobpolicy import (
    INDEX_ANNOTATION,
    TRACKING,
    failure_policy_action,
    format_indexes,
    job_condition,
    job_finished,
    parse_indexes,
    seconds_since,
)
from tests.kube.kubelet import Kubelet, RunningPod
from tests.kube.node import NodeAgent
from tests.kube.satoken import PodCredentials

log = logging.getLogger(__name__)

MAX_CREATE_BACKOFF = 60.0
CommandOverride = Callable[[dict[str, Any], dict[str, Any]], "list[str] | None"]


class JobRunner(NodeAgent):
    def __init__(
        self,
        api: Api,
        *,
        work_dir: Path,
        log_dir: Path,
        credentials: PodCredentials | None = None,
        node_name: str = "local-node",
        max_parallel_pods: int = 2,
        pvc_dirs: dict[str, Path] | None = None,
        extra_env: dict[str, str] | None = None,
        command_override: CommandOverride | None = None,
        interval: float = 0.1,
        failure_backoff: float = 1.0,
        create_backoff: float = 1.0,
        runtime: str = "process",
    ):
        self.api = api
        self.node = node_name
        self.max_parallel = max_parallel_pods
        self.command_override = command_override
        self.interval = interval
        self.failure_backoff = failure_backoff  # the real controller starts at 10 s; tests use less
        # refused pod creates are retried after 1 s, doubling up to a minute (DefaultJobApiBackOff)
        self.create_backoff = create_backoff
        self.create_delays: dict[str, float] = {}
        self.next_create_at: dict[str, float] = {}
        self.create_failures: dict[str, int] = {}  # job uid -> refused pod creates (tests assert on it)
        self.recorder = EventRecorder(api, "job-controller")
        self.start_delay = 0.0
        self.kubelet = Kubelet(
            api,
            work_dir=work_dir,
            log_dir=log_dir,
            credentials=credentials,
            pvc_dirs=pvc_dirs,
            extra_env=extra_env,
            runtime=runtime,
        )
        self.running: dict[str, RunningPod] = {}  # pod uid -> processes
        self.history: dict[str, RunningPod] = {}  # every pod ever started, for host_path()
        self.first_seen: dict[str, float] = {}
        self.next_pod_at: dict[str, float] = {}  # job uid -> earliest next pod (failure backoff)
        self.pods_created: dict[str, int] = {}  # job uid -> pods created (tests assert on it)
        self.jobs_seen: dict[str, str] = {}  # job uid -> "ns/name"
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self.jobs_t = api.type("batch", "v1", "jobs")
        self.pods_t = api.type("", "v1", "pods")

    # ------------------------------------------------------------ lifecycle
    def start(self) -> JobRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for running in self.running.values():
                Kubelet.kill(running)
            for running in self.running.values():
                for c in running.all_containers:
                    with contextlib.suppress(Exception):
                        c.handle.wait(timeout=30)
                self.kubelet.release(running)
            self.kubelet.shutdown()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self.sync_once()
            except Exception:
                log.exception("job runner pass failed")
            self._stop.wait(self.interval)

    def sync_once(self) -> None:
        # Copy only what can still change: terminal pods without finalizers and finished Jobs
        # with no such pods are skipped before the (expensive) deep copy.
        live: set[str] = set()

        def pod_pending(o: dict[str, Any]) -> bool:
            live.add(o["metadata"]["uid"])
            return bool(
                o["metadata"].get("finalizers")
                or o["metadata"].get("deletionTimestamp")
                or (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                or o["metadata"]["uid"] in self.running
            )

        pods, _ = self.api.list(self.pods_t, None, keep=pod_pending)
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Job":
                    by_owner.setdefault(ref["uid"], []).append(pod)
        job_uids: set[str] = set()

        def job_pending(o: dict[str, Any]) -> bool:
            job_uids.add(o["metadata"]["uid"])
            return not job_finished(o) or o["metadata"]["uid"] in by_owner

        jobs, _ = self.api.list(self.jobs_t, None, keep=job_pending)
        # Pods whose Job is gone: release them (the real controller strips the tracking finalizer
        # from orphans, or they could never be deleted).
        for owner, owned_pods in by_owner.items():
            if owner not in job_uids:
                for pod in owned_pods:
                    if TRACKING in (pod["metadata"].get("finalizers") or []):
                        self._try(lambda p=pod: self._drop_finalizer(p))
        for job in jobs:
            uid = job["metadata"]["uid"]
            self.jobs_seen.setdefault(uid, f"{job['metadata']['namespace']}/{job['metadata']['name']}")
            owned = by_owner.get(uid, [])
            try:
                self._sync_job(job, owned)
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        self._sync_pods(pods, live)

    # ------------------------------------------------------------ job controller
    def _sync_job(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        meta, spec = job["metadata"], job["spec"]
        status = dict(job.get("status") or {})
        conds = list(status.get("conditions") or [])
        finished = any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds)
        if meta.get("deletionTimestamp"):
            return
        # Count newly terminated pods once (the job-tracking finalizer marks "not yet counted").
        indexed = spec.get("completionMode") == "Indexed"
        done_idx = parse_indexes(status.get("completedIndexes"))
        fail_reason = None
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed") or TRACKING not in (
                pod["metadata"].get("finalizers") or []
            ):
                continue
            if phase == "Succeeded":
                status["succeeded"] = status.get("succeeded", 0) + 1
                if indexed:
                    done_idx.add(int(pod["metadata"]["annotations"][INDEX_ANNOTATION]))
            else:
                action, rule = failure_policy_action(job, pod)
                if action != "Ignore":
                    status["failed"] = status.get("failed", 0) + 1
                    self.next_pod_at[meta["uid"]] = time.monotonic() + self.failure_backoff
                if action == "FailJob" and fail_reason is None:
                    cs = next(
                        (
                            c
                            for c in pod["status"].get("initContainerStatuses", [])
                            + pod["status"].get("containerStatuses", [])
                            if (c.get("state") or {}).get("terminated", {}).get("exitCode")
                        ),
                        {},
                    )
                    code = cs.get("state", {}).get("terminated", {}).get("exitCode")
                    fail_reason = (
                        "PodFailurePolicy",
                        f"Container {cs.get('name')} for pod {meta['namespace']}/{pod['metadata']['name']}"
                        f" failed with exit code {code} matching FailJob rule at index {rule}",
                    )
            self._drop_finalizer(pod)
        if indexed:
            status["completedIndexes"] = format_indexes(done_idx)
        active = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p
            for p in pods
            if p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if finished:
            for p in active:
                self._delete_pod(p)
            self._write_status(job, status)
            return
        # suspend / resume
        suspended = any(c["type"] == "Suspended" and c["status"] == "True" for c in conds)
        if spec.get("suspend"):
            for p in active:
                self._delete_pod(p)
            if not suspended:
                conds = [c for c in conds if c["type"] != "Suspended"] + [
                    job_condition("Suspended", "JobSuspended", "Job suspended")
                ]
            status.update(conditions=conds, active=0, ready=0)
            status.pop("startTime", None)
            self._write_status(job, status)
            return
        if suspended:
            conds = [c for c in conds if c["type"] != "Suspended"] + [
                job_condition("Suspended", "JobResumed", "Job resumed", "False")
            ]
        status.setdefault("startTime", now_iso())
        # failure checks
        deadline = spec.get("activeDeadlineSeconds")
        if fail_reason is None and status.get("failed", 0) > spec.get("backoffLimit", 6):
            fail_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if fail_reason is None and deadline and seconds_since(status["startTime"]) > deadline:
            fail_reason = ("DeadlineExceeded", "Job was active longer than specified deadline")
        completions = spec.get("completions")
        succeeded = status.get("succeeded", 0)
        complete = (
            (len(done_idx) >= completions)
            if indexed
            else (succeeded >= completions if completions is not None else succeeded > 0 and not active)
        )
        if fail_reason:
            for p in active:
                self._delete_pod(p)
            conds += [job_condition("FailureTarget", *fail_reason), job_condition("Failed", *fail_reason)]
            status.update(conditions=conds, active=0, ready=0, terminating=len(active) + len(terminating))
            self._write_status(job, status)
            return
        if complete:
            for p in active:
                self._delete_pod(p)
            conds += [
                job_condition(
                    "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
                job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
            ]
            status.update(conditions=conds, active=0, ready=0, completionTime=now_iso())
            self._write_status(job, status)
            return
        created = self._create_pods(job, active, terminating, done_idx, succeeded)
        status.update(
            conditions=conds,
            active=len(active) + created,
            ready=sum(1 for p in active if p.get("status", {}).get("phase") == "Running"),
            terminating=len(terminating),
        )
        status.setdefault("uncountedTerminatedPods", {})
        self._write_status(job, status)

    def _create_pods(
        self,
        job: dict[str, Any],
        active: list[dict[str, Any]],
        terminating: list[dict[str, Any]],
        done_idx: set[int],
        succeeded: int,
    ) -> int:
        """Create the missing pods; returns how many were created."""
        meta, spec = job["metadata"], job["spec"]
        now = time.monotonic()
        if now < self.next_pod_at.get(meta["uid"], 0.0) or now < self.next_create_at.get(meta["uid"], 0.0):
            return 0
        if spec.get("podReplacementPolicy") == "Failed" and terminating:
            return 0  # wait for terminating pods to be fully gone before replacing them
        parallelism = spec.get("parallelism", 1)
        if spec.get("completionMode") == "Indexed":
            busy = {int(p["metadata"]["annotations"][INDEX_ANNOTATION]) for p in active + terminating}
            todo = [i for i in range(spec["completions"]) if i not in done_idx and i not in busy]
            todo = todo[: max(0, parallelism - len(active))]
            for n, i in enumerate(todo):
                if not self._create_pod(job, i):
                    return n
            return len(todo)
        completions = spec.get("completions")
        remaining = (completions - succeeded) if completions is not None else parallelism
        missing = max(0, min(parallelism, remaining) - len(active))
        for n in range(missing):
            if not self._create_pod(job, None):
                return n
        return missing

    def _create_pod(self, job: dict[str, Any], index: int | None) -> bool:
        """Create one pod; on refusal record FailedCreate and back off, as the real controller."""
        meta = job["metadata"]
        template = job["spec"]["template"]
        pod_meta: dict[str, Any] = {
            "generateName": f"{meta['name']}-" + (f"{index}-" if index is not None else ""),
            "labels": dict(template.get("metadata", {}).get("labels") or {}),
            "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
            "finalizers": [TRACKING],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        spec = {**template["spec"], "nodeName": self.node}
        if index is not None:
            pod_meta["annotations"][INDEX_ANNOTATION] = str(index)
            pod_meta["labels"][INDEX_ANNOTATION] = str(index)
            spec["hostname"] = f"{meta['name']}-{index}"
            spec["containers"] = [
                {
                    **c,
                    "env": [
                        *(c.get("env") or []),
                        {
                            "name": "JOB_COMPLETION_INDEX",
                            "valueFrom": {
                                "fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}
                            },
                        },
                    ],
                }
                for c in spec["containers"]
            ]
        try:
            self.api.create(self.pods_t, meta["namespace"], {"metadata": pod_meta, "spec": spec})
        except ApiError as exc:
            if "because it is being terminated" not in exc.message:  # no event, as upstream
                self.recorder.warning(
                    {**job, "apiVersion": "batch/v1", "kind": "Job"},
                    "FailedCreate",
                    f"Error creating: {exc.message}",
                )
            delay = self.create_delays.get(meta["uid"], self.create_backoff)
            self.create_delays[meta["uid"]] = min(delay * 2, MAX_CREATE_BACKOFF)
            self.next_create_at[meta["uid"]] = time.monotonic() + delay
            self.create_failures[meta["uid"]] = self.create_failures.get(meta["uid"], 0) + 1
            return False
        self.create_delays.pop(meta["uid"], None)
        self.pods_created[meta["uid"]] = self.pods_created.get(meta["uid"], 0) + 1
        return True

    def _write_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        if status != (job.get("status") or {}):
            self.api.update(
                self.jobs_t,
                job["metadata"]["namespace"],
                job["metadata"]["name"],
                {**job, "status": status},
                subresource="status",
            )

    def _drop_finalizer(self, pod: dict[str, Any]) -> None:
        fins = [f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING]
        self.api.patch(
            self.pods_t,
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "application/merge-patch+json",
            {"metadata": {"finalizers": fins or None}},
        )

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.api.delete(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"])
