"""Job controller + kubelet stand-in for the local API server.

``JobRunner`` reconciles batch/v1 Jobs the way kube-controller-manager's job controller does
(pods with the job-tracking finalizer, counters in status, backoffLimit, podFailurePolicy,
activeDeadlineSeconds, suspend, Indexed completion) and runs the pods on one local "node"
through ``Kubelet``. It is level-triggered: every ``interval`` it re-reads Jobs and Pods
through the in-process API. Faults: ``disrupt_pod``, ``vanish_node``, ``start_delay``.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube.apiserver.api import Api, now_iso
from tests.kube.apiserver.errors import ApiError
from tests.kube.kubelet import Kubelet, RunningPod, rewrite_paths

log = logging.getLogger(__name__)

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
CommandOverride = Callable[[dict[str, Any], dict[str, Any]], "list[str] | None"]


def _cond(ctype: str, reason: str, message: str, status: str = "True") -> dict[str, Any]:
    t = now_iso()
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastProbeTime": t, "lastTransitionTime": t}


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def format_indexes(indexes: set[int]) -> str:
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def failure_policy_action(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, int | None]:
    """(action, rule index) for a failed pod: FailJob | Ignore | FailIndex | Count."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    conditions = (pod.get("status") or {}).get("conditions") or []
    for i, rule in enumerate(rules):
        codes = rule.get("onExitCodes")
        if codes:
            for cs in statuses:
                term = (cs.get("state") or {}).get("terminated") or {}
                code = term.get("exitCode")
                if code is None or code == 0 or (codes.get("containerName") not in (None, cs["name"])):
                    continue
                hit = code in codes["values"]
                if hit == (codes.get("operator", "In") == "In"):
                    return rule["action"], i
        for pat in rule.get("onPodConditions") or []:
            if any(c.get("type") == pat["type"] and c.get("status") == pat.get("status", "True") for c in conditions):
                return rule["action"], i
    return "Count", None


class JobRunner:
    def __init__(self, api: Api, *, work_dir: Path, log_dir: Path, kubeconfig: Path, node_name: str = "local-node",
                 max_parallel_pods: int = 2, pvc_dirs: dict[str, Path] | None = None,
                 extra_env: dict[str, str] | None = None, command_override: CommandOverride | None = None,
                 interval: float = 0.1, failure_backoff: float = 1.0):
        self.api = api
        self.node = node_name
        self.max_parallel = max_parallel_pods
        self.command_override = command_override
        self.interval = interval
        self.failure_backoff = failure_backoff  # the real controller starts at 10 s; tests use less
        self.start_delay = 0.0
        self.kubelet = Kubelet(api, work_dir=work_dir, log_dir=log_dir, kubeconfig=kubeconfig,
                               pvc_dirs=pvc_dirs, extra_env=extra_env)
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
                for c in running.containers:
                    with contextlib.suppress(Exception):
                        c.proc.wait(timeout=5)

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
            return bool(o["metadata"].get("finalizers") or o["metadata"].get("deletionTimestamp")
                        or (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                        or o["metadata"]["uid"] in self.running)

        pods, _ = self.api.list(self.pods_t, None, keep=pod_pending)
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Job":
                    by_owner.setdefault(ref["uid"], []).append(pod)
        jobs, _ = self.api.list(self.jobs_t, None,
                                keep=lambda o: not _finished(o) or o["metadata"]["uid"] in by_owner)
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
            if phase not in ("Succeeded", "Failed") or TRACKING not in (pod["metadata"].get("finalizers") or []):
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
                    cs = next((c for c in pod["status"].get("containerStatuses") or []
                               if (c.get("state") or {}).get("terminated", {}).get("exitCode")), {})
                    code = cs.get("state", {}).get("terminated", {}).get("exitCode")
                    fail_reason = ("PodFailurePolicy",
                                   f"Container {cs.get('name')} for pod {meta['namespace']}/{pod['metadata']['name']}"
                                   f" failed with exit code {code} matching FailJob rule at index {rule}")
            self._drop_finalizer(pod)
        if indexed:
            status["completedIndexes"] = format_indexes(done_idx)
        active = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
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
                conds = [c for c in conds if c["type"] != "Suspended"] + [_cond("Suspended", "JobSuspended",
                                                                                "Job suspended")]
            status.update(conditions=conds, active=0, ready=0)
            status.pop("startTime", None)
            self._write_status(job, status)
            return
        if suspended:
            conds = [c for c in conds if c["type"] != "Suspended"] + [_cond("Suspended", "JobResumed", "Job resumed",
                                                                            "False")]
        status.setdefault("startTime", now_iso())
        # failure checks
        deadline = spec.get("activeDeadlineSeconds")
        if fail_reason is None and status.get("failed", 0) > spec.get("backoffLimit", 6):
            fail_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if fail_reason is None and deadline and _age(status["startTime"]) > deadline:
            fail_reason = ("DeadlineExceeded", "Job was active longer than specified deadline")
        completions = spec.get("completions")
        succeeded = status.get("succeeded", 0)
        complete = (len(done_idx) >= completions) if indexed else \
            (succeeded >= completions if completions is not None else succeeded > 0 and not active)
        if fail_reason:
            for p in active:
                self._delete_pod(p)
            conds += [_cond("FailureTarget", *fail_reason), _cond("Failed", *fail_reason)]
            status.update(conditions=conds, active=0, ready=0, terminating=len(active) + len(terminating))
            self._write_status(job, status)
            return
        if complete:
            for p in active:
                self._delete_pod(p)
            conds += [_cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                      _cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]
            status.update(conditions=conds, active=0, ready=0, completionTime=now_iso())
            self._write_status(job, status)
            return
        created = self._create_pods(job, active, terminating, done_idx, succeeded)
        status.update(conditions=conds, active=len(active) + created,
                      ready=sum(1 for p in active if p.get("status", {}).get("phase") == "Running"),
                      terminating=len(terminating))
        status.setdefault("uncountedTerminatedPods", {})
        self._write_status(job, status)

    def _create_pods(self, job: dict[str, Any], active: list[dict[str, Any]], terminating: list[dict[str, Any]],
                     done_idx: set[int], succeeded: int) -> int:
        """Create the missing pods; returns how many were created."""
        meta, spec = job["metadata"], job["spec"]
        if time.monotonic() < self.next_pod_at.get(meta["uid"], 0.0):
            return 0
        if spec.get("podReplacementPolicy") == "Failed" and terminating:
            return 0  # wait for terminating pods to be fully gone before replacing them
        parallelism = spec.get("parallelism", 1)
        if spec.get("completionMode") == "Indexed":
            busy = {int(p["metadata"]["annotations"][INDEX_ANNOTATION]) for p in active + terminating}
            todo = [i for i in range(spec["completions"]) if i not in done_idx and i not in busy]
            todo = todo[: max(0, parallelism - len(active))]
            for i in todo:
                self._create_pod(job, i)
            return len(todo)
        completions = spec.get("completions")
        remaining = (completions - succeeded) if completions is not None else parallelism
        missing = max(0, min(parallelism, remaining) - len(active))
        for _ in range(missing):
            self._create_pod(job, None)
        return missing

    def _create_pod(self, job: dict[str, Any], index: int | None) -> None:
        meta = job["metadata"]
        template = job["spec"]["template"]
        pod_meta: dict[str, Any] = {
            "generateName": f"{meta['name']}-" + (f"{index}-" if index is not None else ""),
            "labels": dict(template.get("metadata", {}).get("labels") or {}),
            "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
            "finalizers": [TRACKING],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
                                 "controller": True, "blockOwnerDeletion": True}],
        }
        spec = {**template["spec"], "nodeName": self.node}
        if index is not None:
            pod_meta["annotations"][INDEX_ANNOTATION] = str(index)
            pod_meta["labels"][INDEX_ANNOTATION] = str(index)
            spec["hostname"] = f"{meta['name']}-{index}"
            spec["containers"] = [{**c, "env": [*(c.get("env") or []), {"name": "JOB_COMPLETION_INDEX", "valueFrom": {
                "fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}]}
                for c in spec["containers"]]
        self.api.create(self.pods_t, meta["namespace"], {"metadata": pod_meta, "spec": spec})
        self.pods_created[meta["uid"]] = self.pods_created.get(meta["uid"], 0) + 1

    def _write_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        if status != (job.get("status") or {}):
            self.api.update(self.jobs_t, job["metadata"]["namespace"], job["metadata"]["name"],
                            {**job, "status": status}, subresource="status")

    def _drop_finalizer(self, pod: dict[str, Any]) -> None:
        fins = [f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING]
        self.api.patch(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"],
                       "application/merge-patch+json", {"metadata": {"finalizers": fins or None}})

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.api.delete(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ------------------------------------------------------------ kubelet side
    def _sync_pods(self, pods: list[dict[str, Any]], live: set[str]) -> None:
        for pod in pods:
            uid = pod["metadata"]["uid"]
            phase = (pod.get("status") or {}).get("phase")
            if not pod["spec"].get("nodeName"):
                pod["spec"]["nodeName"] = self.node  # the scheduler: one node
                self._try(lambda p=pod: self.api.update(self.pods_t, p["metadata"]["namespace"],
                                                        p["metadata"]["name"], p))
                continue
            if pod["spec"]["nodeName"] != self.node:
                continue
            running = self.running.get(uid)
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate(pod, running)
                continue
            if phase == "Pending" and running is None:
                self.first_seen.setdefault(uid, time.monotonic())
                busy = sum(1 for r in self.running.values() if any(c.proc.poll() is None for c in r.containers))
                if busy < self.max_parallel and time.monotonic() - self.first_seen[uid] >= self.start_delay:
                    self._start(pod)
            elif running is not None and phase == "Running" and all(c.proc.poll() is not None
                                                                     for c in running.containers):
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
            **(pod.get("status") or {}), "phase": "Running", "startTime": t, "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "conditions": [{"type": c, "status": "True", "lastTransitionTime": t}
                           for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [Kubelet.container_status(c, images[c.name]) for c in running.containers],
        }
        self._try(lambda: self.api.update(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod,
                                          subresource="status"))

    def _finish(self, pod: dict[str, Any], running: RunningPod) -> None:
        images = {c["name"]: c.get("image", "") for c in pod["spec"]["containers"]}
        statuses = [Kubelet.container_status(c, images[c.name]) for c in running.containers]
        ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses) and not running.disrupted
        t = now_iso()
        conds = [{"type": c, "status": "False" if c in ("Ready", "ContainersReady") else "True",
                  "lastTransitionTime": t, **({"reason": "PodCompleted" if ok else "PodFailed"}
                                              if c in ("Ready", "ContainersReady") else {})}
                 for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        if running.disrupted:
            conds.append({"type": "DisruptionTarget", "status": "True", "reason": running.disrupted,
                          "message": f"{running.disrupted}: the local job runner injected a disruption",
                          "lastTransitionTime": t})
        pod["status"] = {**pod["status"], "phase": "Succeeded" if ok else "Failed", "conditions": conds,
                         "containerStatuses": statuses}
        self._try(lambda: self.api.update(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"], pod,
                                          subresource="status"))
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
            self._try(lambda: self.api.update(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                              pod, subresource="status"))
        self._try(lambda: self.api.delete(self.pods_t, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                          {"gracePeriodSeconds": 0}))

    @staticmethod
    def _try(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except ApiError as exc:
            log.debug("job runner write skipped: %s", exc.message)


def _finished(job: dict[str, Any]) -> bool:
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def _age(ts: str) -> float:
    return time.time() - calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
