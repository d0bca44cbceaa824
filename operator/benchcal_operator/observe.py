"""Pure observation of child Jobs: a Job body -> ``JobObservation``, and which observed Job
stands for what the run asks now (a checkpoint's current pairs, the current reduction input).

A run that grew has Jobs of several generations (``benchcal.work``): the planner and the status
both ask here which one counts, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchcal import naming, work
from benchcal.lifecycle import ACTIVE, FAILED, QUEUED, RUNNING, SUCCEEDED
from benchcal.spec import CalibrationRun
from benchcal_operator.diagnose import Waiting

# Kubernetes' own Job condition types (batch/v1), not ours
JOB_DONE_CONDITIONS = ("Complete", "SuccessCriteriaMet")
JOB_FAILED_CONDITIONS = ("Failed", "FailureTarget")
JOB_SUSPENDED_CONDITION = "Suspended"


@dataclass(frozen=True)
class JobObservation:
    """What the operator needs to know about one child Job."""

    name: str
    component: str
    checkpoint: str
    phase: str  # Queued | Running | Succeeded | Failed (a Job that exists is never Pending)
    started_at: str = ""
    finished_at: str = ""
    attempts: int = 0
    reason: str = ""
    message: str = ""
    suspended: bool = False
    uid: str = ""
    owner_uid: str = ""  # the controller ownerReference's uid: which CalibrationRun (same name or not)
    kueue: bool = False  # labelled kueue.x-k8s.io/queue-name: Kueue owns spec.suspend
    suspended_by_operator: bool = False  # benchcal.dev/suspended-by: the only Jobs the operator resumes
    # the work's key (benchcal.work): pairs_key of an evaluator Job, reduction_key of a reducer Job;
    # "" on a Job of an operator from before runs could grow (taken as the current generation's)
    key: str = ""
    pairs: frozenset[tuple[str, int]] = frozenset()  # an evaluator Job's (benchmark, shots) pairs
    # not part of what a reconcile reacts to (pod readiness flaps), but read by the stall check
    created_at: str = field(default="", compare=False)
    active: int = field(default=0, compare=False)
    ready: int = field(default=0, compare=False)
    waiting: Waiting | None = None  # why it makes no progress (diagnose.py), attached by the reconcile


def _true(conditions: list[dict[str, Any]], *types: str) -> dict[str, Any] | None:
    for cond in conditions:
        if cond.get("type") in types and cond.get("status") == "True":
            return cond
    return None


def _tasks_argument(spec: Mapping[str, Any]) -> str:
    """The ``--tasks`` of an evaluator Job's container: the pairs of a Job from before the
    annotation existed (its args are the same ``benchcal evaluate`` command line)."""
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    args = list(containers[0].get("args") or [])
    return str(args[args.index("--tasks") + 1]) if "--tasks" in args[:-1] else ""


def observe_job(body: Mapping[str, Any]) -> JobObservation:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    spec = body.get("spec") or {}
    st = body.get("status") or {}
    conditions = st.get("conditions") or []
    attempts = int(st.get("failed") or 0) + int(st.get("succeeded") or 0) + int(st.get("active") or 0)
    done = _true(conditions, *JOB_DONE_CONDITIONS)
    failed = _true(conditions, *JOB_FAILED_CONDITIONS)
    finished_at = ""
    if done:
        phase, finished_at = SUCCEEDED, st.get("completionTime") or done.get("lastTransitionTime", "")
    elif failed:
        phase, finished_at = FAILED, failed.get("lastTransitionTime", "")
    elif spec.get("suspend") or _true(conditions, JOB_SUSPENDED_CONDITION):
        phase = QUEUED
    else:
        phase = RUNNING  # active, or pods about to be created
    return JobObservation(
        name=meta.get("name", ""),
        component=labels.get(naming.COMPONENT_LABEL, ""),
        checkpoint=labels.get(naming.CHECKPOINT_LABEL, ""),
        phase=phase,
        started_at=st.get("startTime", "") or "",
        finished_at=finished_at or "",
        attempts=attempts,
        reason=(failed or {}).get("reason", ""),
        message=(failed or {}).get("message", ""),
        suspended=bool(spec.get("suspend")),
        uid=meta.get("uid", ""),
        owner_uid=next(
            (r.get("uid", "") for r in meta.get("ownerReferences") or [] if r.get("controller")), ""
        ),
        kueue=naming.KUEUE_QUEUE_LABEL in labels,
        suspended_by_operator=annotations.get(naming.SUSPENDED_BY_ANNOTATION) == naming.SUSPENDED_BY_OPERATOR,
        key=labels.get(naming.PAIRS_KEY_LABEL) or labels.get(naming.REDUCTION_KEY_LABEL) or "",
        pairs=work.parse_pair_list(annotations.get(naming.PAIRS_ANNOTATION) or _tasks_argument(spec)),
        created_at=meta.get("creationTimestamp", "") or "",
        active=int(st.get("active") or 0),
        ready=int(st.get("ready") or 0),
    )


def evaluator_jobs(jobs: Mapping[str, JobObservation]) -> list[JobObservation]:
    return [o for o in jobs.values() if o.component == naming.EVALUATOR and o.checkpoint]


def _latest(candidates: list[JobObservation]) -> JobObservation | None:
    return max(candidates, key=lambda o: (o.finished_at, o.created_at, o.name), default=None)


def evaluators_by_checkpoint(
    run: CalibrationRun, jobs: Mapping[str, JobObservation]
) -> dict[str, JobObservation]:
    """The Job that stands for each checkpoint's current work (by checkpoint label, not by name).

    In this order: the Job of the checkpoint's current pairs (any phase); a Succeeded Job whose
    pairs cover them (nothing left to do); a Job of other pairs still active (the new Job waits for
    it, then resumes from its results). A checkpoint without one needs a new Job. Failed Jobs of
    other pairs are superseded. A Job without a pairs key (an operator from before runs could
    grow) is matched by the pairs of its ``--tasks`` argument.
    """
    needed = work.run_pairs(run)
    key = work.pairs_key(needed)
    by_ckpt: dict[str, list[JobObservation]] = {}
    for obs in evaluator_jobs(jobs):
        by_ckpt.setdefault(obs.checkpoint, []).append(obs)
    out = {}
    for name, candidates in by_ckpt.items():
        chosen = (
            _latest([o for o in candidates if o.key == key or (not o.key and o.pairs == set(needed))])
            or _latest([o for o in candidates if o.phase == SUCCEEDED and work.covers(o.pairs, needed)])
            or _latest([o for o in candidates if o.phase in ACTIVE])
        )
        if chosen is not None:
            out[name] = chosen
    return out


def reducer_of(run: CalibrationRun, jobs: Mapping[str, JobObservation]) -> JobObservation | None:
    """The reducer Job of the run's current reduction input (``benchcal.work.reduction_key``).

    A reducer without a key (an operator from before runs could grow) reduced every checkpoint
    that had an evaluator Job then: it is current only while those are exactly the spec's
    checkpoints, each with the current pairs (the run has not grown since)."""
    key = work.reduction_key(run)
    reducers = [o for o in jobs.values() if o.component == naming.REDUCER]
    current = _latest([o for o in reducers if o.key == key])
    if current is not None:
        return current
    legacy = [o for o in evaluator_jobs(jobs) if not o.key]
    unchanged = {o.checkpoint for o in legacy} == {c.name for c in run.checkpoints} and all(
        o.pairs == set(work.run_pairs(run)) for o in legacy
    )
    return _latest([o for o in reducers if not o.key]) if unchanged else None


def earlier_reduction(run: CalibrationRun, jobs: Mapping[str, JobObservation]) -> JobObservation | None:
    """A Succeeded reducer Job of an earlier input: its classification is in status while the run catches up."""
    current = reducer_of(run, jobs)
    done = [
        o
        for o in jobs.values()
        if o.component == naming.REDUCER and o.phase == SUCCEEDED and o is not current
    ]
    return _latest(done)
