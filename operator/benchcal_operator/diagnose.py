"""Pure diagnosis of Jobs that exist but make no progress: why, from events, pods and Workloads.

A Job's own conditions say nothing while its pods cannot be created or scheduled, so the
operator looks further for the Jobs ``needs_diagnosis`` picks from its index (cheap: no API
calls), and these functions turn what it reads into a ``Waiting`` (reason, message, stalled):

- ``FailedCreate`` Warning events on the Job (the job controller's words: missing
  ServiceAccount, Pod Security, ResourceQuota, unknown PriorityClass/RuntimeClass): *stalled*,
  the run cannot progress without someone fixing the namespace or the spec;
- pods whose containers cannot start (``CreateContainerConfigError``: a missing Secret or key;
  ``InvalidImageName``): stalled; ``ImagePullBackOff``/``ErrImagePull``: reported, the kubelet
  keeps trying;
- pods ``Pending`` as unschedulable for longer than ``unschedulable_seconds`` ("0/12 nodes are
  available: 12 Insufficient nvidia.com/gpu"): reported, not failed (capacity may come);
- evicted pods (``Evicted``: disk pressure, an emptyDir over its sizeLimit): reported;
- Jobs Kueue holds suspended: its Workload's ``QuotaReserved``/``Admitted`` conditions (e.g.
  ``Inadmissible``: no quota, a misspelt queue): reported, not failed.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# container waiting reasons: (stalled?) — others (ContainerCreating, PodInitializing) are normal
STALLING_WAITS = ("CreateContainerConfigError", "CreateContainerError", "InvalidImageName")
REPORTED_WAITS = ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff")
CREATE_GRACE_SECONDS = 10.0  # a Job younger than this may simply not have pods yet


@dataclass(frozen=True)
class Waiting:
    reason: str  # CamelCase: FailedCreate, Unschedulable, Inadmissible, ImagePullBackOff, ...
    message: str
    stalled: bool = False  # needs intervention (kstatus Stalled); otherwise only reported


def seconds_since(timestamp: str, now: float | None = None) -> float:
    if not timestamp:
        return 0.0
    try:
        then = calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    return (time.time() if now is None else now) - then


def needs_diagnosis(
    phase: str, active: int, ready: int, suspended: bool, suspended_by_operator: bool, age: float
) -> bool:
    """From the index alone: a running Job with no pods (or pods not ready), or one Kueue holds."""
    if phase not in ("Running", "Queued"):
        return False
    if suspended:
        # suspended by someone else (Kueue, with or without a queue label): ask its Workload why
        return not suspended_by_operator
    return age >= CREATE_GRACE_SECONDS and (active == 0 or ready < active)


def from_events(events: Sequence[Mapping[str, Any]]) -> Waiting | None:
    """The newest FailedCreate Warning on the Job (the job controller records one per refusal)."""
    failed = [
        e for e in events if e.get("reason") == "FailedCreate" and e.get("type", "Warning") == "Warning"
    ]
    if not failed:
        return None
    newest = max(failed, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return Waiting("FailedCreate", f"pods cannot be created: {newest.get('message', '')}", stalled=True)


def _container_waits(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    status = pod.get("status") or {}
    out = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                out.append((cs.get("name", ""), waiting["reason"], waiting.get("message", "")))
    return out


def from_pods(
    pods: Sequence[Mapping[str, Any]], unschedulable_seconds: float, now: float | None = None
) -> Waiting | None:
    """The most serious reason among a Job's pods why none of them runs."""
    reported: Waiting | None = None
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        status = pod.get("status") or {}
        for container, reason, message in _container_waits(pod):
            if reason in STALLING_WAITS:
                return Waiting(
                    reason, f"pod {name}, container {container}: {reason}: {message}", stalled=True
                )
            if reason in REPORTED_WAITS and reported is None:
                reported = Waiting(reason, f"pod {name}, container {container}: {reason}: {message}")
        if status.get("phase") == "Failed" and status.get("reason") == "Evicted" and reported is None:
            reported = Waiting("Evicted", f"pod {name} evicted: {status.get('message', '')}")
        if status.get("phase") != "Pending":
            continue
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                since = cond.get("lastTransitionTime") or (pod.get("metadata") or {}).get(
                    "creationTimestamp", ""
                )
                waited = seconds_since(since, now)
                if waited >= unschedulable_seconds and reported is None:
                    reported = Waiting(
                        "Unschedulable",
                        f"pod {name} unschedulable for {waited:.0f}s: {cond.get('message', '')}",
                    )
    return reported


def from_workloads(workloads: Sequence[Mapping[str, Any]] | None) -> Waiting | None:
    """Why Kueue has not admitted the Job (None: admitted, or Kueue is not installed)."""
    if workloads is None:
        return None
    if not workloads:
        return Waiting("QueuedForKueue", "suspended, waiting for Kueue to create its Workload")
    conditions = {c.get("type"): c for c in (workloads[0].get("status") or {}).get("conditions") or []}
    if (conditions.get("Admitted") or {}).get("status") == "True":
        return None
    quota = conditions.get("QuotaReserved") or {}
    reason = quota.get("reason") or "Pending"
    name = (workloads[0].get("metadata") or {}).get("name", "")
    detail = quota.get("message") or "waiting for quota"
    return Waiting(
        reason if reason != "Pending" else "QueuedForKueue", f"Kueue Workload {name} not admitted: {detail}"
    )
