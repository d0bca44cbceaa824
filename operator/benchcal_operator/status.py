"""Pure status derivation: child Job bodies -> observations -> the whole CalibrationRun status.

The operator recomputes the complete status from what it observes (level-based) and writes
it with one merge patch; it never increments fields. It owns every status field except
``classification`` and ``resultsRef``, which the reducer writes (benchcal.publish).
``phase`` is a derived summary for printer columns; conditions carry the meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchcal import naming
from benchcal.lifecycle import (
    CONDITION_ACCEPTED,
    CONDITION_FAILED,
    CONDITION_READY,
    CONDITION_RUNNING,
    CONDITION_STALLED,
    CONDITION_SUCCEEDED,
    FAILED,
    INVALID,
    JOB_PHASES,
    PENDING,
    QUEUED,
    REASON_CHECKPOINTS_FAILED,
    REASON_CLASSIFIED,
    REASON_EVALUATING,
    REASON_FAILING,
    REASON_INVALID_SPEC,
    REASON_NO_FAILURE,
    REASON_NOT_ALLOWED,
    REASON_NOT_STALLED,
    REASON_PENDING,
    REASON_QUEUED,
    REASON_REDUCER_FAILED,
    REASON_REDUCING,
    REASON_SUSPENDED,
    REASON_VALID,
    REDUCING,
    RUNNING,
    SUCCEEDED,
    SUSPENDED,
    TERMINAL,
)
from benchcal.spec import CalibrationRun

MESSAGE_MAX = 1024
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


def _true(conditions: list[dict[str, Any]], *types: str) -> dict[str, Any] | None:
    for cond in conditions:
        if cond.get("type") in types and cond.get("status") == "True":
            return cond
    return None


def observe_job(body: Mapping[str, Any]) -> JobObservation:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
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
    )


def _clip(text: str, limit: int = MESSAGE_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checkpoint_entries(run: CalibrationRun, jobs: Mapping[str, JobObservation]) -> list[dict[str, Any]]:
    entries = []
    for ckpt in run.checkpoints:
        obs = jobs.get(naming.evaluator_job_name(run.name, ckpt.name))
        entry: dict[str, Any] = {
            "name": ckpt.name,
            "phase": obs.phase if obs else PENDING,
            "flops": ckpt.flops,
        }
        if obs:
            entry.update(jobName=obs.name, attempts=obs.attempts)
            if obs.started_at:
                entry["startedAt"] = obs.started_at
            if obs.finished_at:
                entry["finishedAt"] = obs.finished_at
            if obs.phase == FAILED:
                entry["message"] = _clip(obs.message or obs.reason or "evaluator Job failed")
        entries.append(entry)
    return entries


def _failure_message(failed: list[dict[str, Any]], succeeded: list[str]) -> str:
    parts = [f"{e['name']} ({e.get('message', 'failed')})" for e in failed]
    kept = f"; results of {', '.join(succeeded)} are kept" if succeeded else ""
    return _clip(f"checkpoint(s) failed: {'; '.join(parts)}{kept}", 4000)


def derive_status(
    run: CalibrationRun,
    jobs: Mapping[str, JobObservation],
    *,
    previous: Mapping[str, Any] | None = None,
    now: str,
    rejection: str = "",
) -> dict[str, Any]:
    """The operator-owned part of status, from the run and its observed Jobs."""
    entries = checkpoint_entries(run, jobs)
    count = {p: sum(1 for e in entries if e["phase"] == p) for p in JOB_PHASES}
    reducer = jobs.get(naming.reducer_job_name(run.name))
    failed = [e for e in entries if e["phase"] == FAILED]
    succeeded = [e["name"] for e in entries if e["phase"] == SUCCEEDED]
    active = count[QUEUED] + count[RUNNING]

    if rejection:
        phase, reason, message = INVALID, REASON_NOT_ALLOWED, rejection
    elif reducer and reducer.phase == SUCCEEDED:
        phase, reason, message = (
            SUCCEEDED,
            REASON_CLASSIFIED,
            f"{len(entries)} checkpoints evaluated and classified",
        )
    elif reducer and reducer.phase == FAILED:
        detail = reducer.message or reducer.reason or "reducer Job failed"
        phase, reason, message = FAILED, REASON_REDUCER_FAILED, _clip(f"reducer failed: {detail}", 4000)
    elif failed and not active:
        phase, reason, message = FAILED, REASON_CHECKPOINTS_FAILED, _failure_message(failed, succeeded)
    elif count[SUCCEEDED] == len(entries):
        phase, reason, message = REDUCING, REASON_REDUCING, "all checkpoints evaluated; classifying"
    elif run.suspend and not count[RUNNING]:
        phase, reason, message = SUSPENDED, REASON_SUSPENDED, "spec.suspend is true"
    elif jobs:
        # Queued: nothing runs because every active Job is suspended (waiting for Kueue quota)
        phase = RUNNING
        reason = REASON_QUEUED if count[QUEUED] and not count[RUNNING] else REASON_EVALUATING
        message = f"{count[SUCCEEDED]}/{len(entries)} checkpoints evaluated, {count[RUNNING]} running, {count[QUEUED]} queued"
        if failed:
            reason, message = (
                REASON_FAILING,
                _failure_message(failed, succeeded) + "; waiting for running checkpoints",
            )
    else:
        phase, reason, message = PENDING, REASON_PENDING, "no Job created yet"

    status: dict[str, Any] = {
        "observedGeneration": run.generation,
        "phase": phase,
        "progress": f"{count[SUCCEEDED]}/{len(entries)}",
        "checkpointsTotal": len(entries),
        "checkpointsSucceeded": count[SUCCEEDED],
        "checkpointsFailed": count[FAILED],
        "checkpointsRunning": count[RUNNING],
        "checkpointsPending": count[PENDING] + count[QUEUED],
        "checkpoints": entries,
        "reducer": _reducer_entry(reducer),
    }
    status["conditions"] = merge_conditions(
        (previous or {}).get("conditions", []), _conditions(phase, reason, message), run.generation, now
    )
    return status


def _reducer_entry(reducer: JobObservation | None) -> dict[str, Any]:
    if reducer is None:
        return {"phase": PENDING}
    entry = {"jobName": reducer.name, "phase": reducer.phase}
    if reducer.phase == FAILED:
        entry["message"] = _clip(reducer.message or reducer.reason or "reducer Job failed")
    return entry


def invalid_status(
    error: str, generation: int, *, previous: Mapping[str, Any] | None = None, now: str
) -> dict[str, Any]:
    """Status for a spec that failed validation: Accepted=False naming the field; no Job is created."""
    conditions = _conditions(INVALID, REASON_INVALID_SPEC, _clip(error, 4000))
    return {
        "observedGeneration": generation,
        "phase": INVALID,
        "conditions": merge_conditions((previous or {}).get("conditions", []), conditions, generation, now),
    }


def _conditions(phase: str, reason: str, message: str) -> list[dict[str, str]]:
    invalid = phase == INVALID
    working = phase in (RUNNING, REDUCING)
    terminal_bad = phase in (FAILED, INVALID)
    return [
        {
            "type": CONDITION_ACCEPTED,
            "status": "False" if invalid else "True",
            "reason": reason if invalid else REASON_VALID,
            "message": message if invalid else "spec is valid",
        },
        {
            "type": CONDITION_RUNNING,
            "status": "True" if working else "False",
            "reason": reason,
            "message": message,
        },
        {
            "type": CONDITION_SUCCEEDED,
            "status": "True" if phase == SUCCEEDED else "False" if terminal_bad else "Unknown",
            "reason": reason,
            "message": message,
        },
        {
            "type": CONDITION_FAILED,
            "status": "True" if terminal_bad else "False",
            "reason": reason if terminal_bad else REASON_NO_FAILURE,
            "message": message if terminal_bad else "",
        },
        {
            "type": CONDITION_READY,
            "status": "True" if phase == SUCCEEDED else "False",
            "reason": reason,
            "message": message,
        },
        {
            "type": CONDITION_STALLED,
            "status": "True" if terminal_bad else "False",
            "reason": reason if terminal_bad else REASON_NOT_STALLED,
            "message": message if terminal_bad else "",
        },
    ]


def merge_conditions(
    previous: list[Mapping[str, Any]], current: list[dict[str, str]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Keep lastTransitionTime when a condition's status did not change (API conventions)."""
    before = {c.get("type"): c for c in previous or []}
    merged = []
    for cond in current:
        old = before.get(cond["type"])
        changed = old is None or old.get("status") != cond["status"]
        since = now if changed else old.get("lastTransitionTime", now)
        merged.append({**cond, "lastTransitionTime": since, "observedGeneration": generation})
    return merged


def status_changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change any operator-owned field (avoids no-op patches)."""
    return any(previous.get(key) != value for key, value in new.items())


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def transition_events(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """Kubernetes Events for what changed between two statuses (checkpoint and run transitions)."""
    events = []
    before = {c["name"]: c for c in previous.get("checkpoints", [])}
    for entry in new.get("checkpoints", []):
        old_phase = before.get(entry["name"], {}).get("phase")
        if entry["phase"] == old_phase:
            continue
        if entry["phase"] == FAILED:
            msg = f"checkpoint {entry['name']} (Job {entry.get('jobName', '?')}) failed: {entry.get('message', '')}"
            events.append(Event("Warning", "CheckpointFailed", _clip(msg)))
        elif entry["phase"] == SUCCEEDED:
            events.append(Event("Normal", "CheckpointSucceeded", f"checkpoint {entry['name']} evaluated"))
    if new.get("phase") != previous.get("phase") and new.get("phase") in TERMINAL:
        ready = next((c for c in new.get("conditions", []) if c["type"] == CONDITION_READY), {})
        kind = "Normal" if new["phase"] == SUCCEEDED else "Warning"
        events.append(Event(kind, f"Run{new['phase']}", _clip(ready.get("message", new["phase"]))))
    return events
