"""Pure status derivation: child Job bodies -> observations -> the whole CalibrationRun status.

The operator recomputes the complete status from what it observes (level-based) and writes
it with one merge patch; it never increments fields. It owns every status field except
``classification``, ``resultsRef``, ``history`` and ``lastChange``, which the reducer writes
(benchcal.publish): neither ``derive_status`` nor ``invalid_status`` ever names them, so the merge
patch leaves them as they are (the verdict history survives every reconcile and an invalid spec).
``phase`` is a derived summary for printer columns; conditions carry the meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchcal.lifecycle import (
    CONDITION_ACCEPTED,
    CONDITION_FAILED,
    CONDITION_READY,
    CONDITION_RECONCILING,
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
    REASON_PROGRESSING,
    REASON_QUEUED,
    REASON_REDUCER_FAILED,
    REASON_REDUCING,
    REASON_SUSPENDED,
    REASON_VALID,
    REASON_WAITING,
    REDUCING,
    RUNNING,
    SUCCEEDED,
    SUSPENDED,
    TERMINAL,
)
from benchcal.spec import CalibrationRun
from benchcal_operator.diagnose import Waiting
from benchcal_operator.observe import JobObservation, earlier_reduction, evaluators_by_checkpoint, reducer_of

MESSAGE_MAX = 1024


def _clip(text: str, limit: int = MESSAGE_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checkpoint_entries(
    run: CalibrationRun, jobs: Mapping[str, JobObservation], blocked: Mapping[str, Waiting] | None = None
) -> list[dict[str, Any]]:
    """``blocked``: checkpoint -> why its Job cannot be created yet (e.g. a stale same-named Job)."""
    entries = []
    by_ckpt = evaluators_by_checkpoint(run, jobs)
    for ckpt in run.checkpoints:
        obs = by_ckpt.get(ckpt.name)
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
                if obs.reason:
                    entry["reason"] = obs.reason
            elif obs.waiting is not None:
                entry.update(reason=obs.waiting.reason, message=_clip(obs.waiting.message))
        elif blocked and ckpt.name in blocked:
            entry.update(reason=blocked[ckpt.name].reason, message=_clip(blocked[ckpt.name].message))
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
    rejection_reason: str = REASON_NOT_ALLOWED,
    blocked: Mapping[str, Waiting] | None = None,
) -> dict[str, Any]:
    """The operator-owned part of status, from the run and its observed Jobs.

    ``rejection``: the run is valid but cannot run (operator policy, or the API server refused a
    Job built from it: ``rejection_reason``). ``blocked``: checkpoints (or "reducer") whose Job
    cannot be created yet, and why.
    """
    entries = checkpoint_entries(run, jobs, blocked)
    count = {p: sum(1 for e in entries if e["phase"] == p) for p in JOB_PHASES}
    reducer = reducer_of(run, jobs)
    failed = [e for e in entries if e["phase"] == FAILED]
    succeeded = [e["name"] for e in entries if e["phase"] == SUCCEEDED]
    active = count[QUEUED] + count[RUNNING]

    if rejection:
        phase, reason, message = INVALID, rejection_reason, rejection
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

    reducer_entry = _reducer_entry(reducer, blocked)
    stalled = _stalls(run, entries, jobs, blocked)
    waits = _wait_lines(entries, reducer_entry)
    if phase in (RUNNING, REDUCING, PENDING) and waits and not failed:
        # reported, not failed: e.g. unschedulable pods, a Workload Kueue has not admitted
        reason = REASON_WAITING if reason != REASON_REDUCING else reason
        message = _clip(f"{message}; waiting: {'; '.join(waits)}", 4000)
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
        "reducer": reducer_entry,
    }
    conditions = _conditions(phase, reason, message)
    earlier = earlier_reduction(run, jobs)
    if earlier is not None and phase in (PENDING, RUNNING, REDUCING):
        # a generation that grew the run: Ready=False/Progressing until its own reduction succeeded;
        # status.classification still holds the earlier reduction's (the reducer replaces it)
        ready = next(c for c in conditions if c["type"] == CONDITION_READY)
        ready.update(
            reason=REASON_PROGRESSING,
            message=_clip(
                f"catching up with generation {run.generation}: {message}; the classification shown is "
                f"from the earlier reduction (Job {earlier.name}) until this one finishes",
                4000,
            ),
        )
    if stalled and phase not in (FAILED, INVALID, SUCCEEDED):
        stall_reason = _stall_reason(entries, reducer_entry)
        for cond in conditions:
            if cond["type"] == CONDITION_STALLED:
                cond.update(status="True", reason=stall_reason, message=_clip("; ".join(stalled), 4000))
    status["conditions"] = merge_conditions(
        (previous or {}).get("conditions", []), conditions, run.generation, now
    )
    return status


def _wait_lines(entries: list[dict[str, Any]], reducer: dict[str, Any]) -> list[str]:
    lines = [
        f"checkpoint {e['name']}: {e['message']}"
        for e in entries
        if e.get("reason") and e["phase"] not in (FAILED, SUCCEEDED)
    ]
    if reducer.get("reason") and reducer["phase"] not in (FAILED, SUCCEEDED):
        lines.append(f"reducer: {reducer['message']}")
    return lines


def _stalls(
    run: CalibrationRun,
    entries: list[dict[str, Any]],
    jobs: Mapping[str, JobObservation],
    blocked: Mapping[str, Waiting] | None,
) -> list[str]:
    """Lines for the Stalled condition: the waits that need someone to act (pods refused, ...)."""
    out = []
    by_ckpt = evaluators_by_checkpoint(run, jobs)
    for e in entries:
        obs = by_ckpt.get(e["name"])
        waiting = obs.waiting if obs is not None else (blocked or {}).get(e["name"])
        if waiting is not None and waiting.stalled and e["phase"] not in (FAILED, SUCCEEDED):
            job = f" (Job {obs.name})" if obs is not None else ""
            out.append(f"checkpoint {e['name']}{job}: {waiting.message}")
    red = reducer_of(run, jobs)
    waiting = red.waiting if red is not None else (blocked or {}).get(REDUCER_KEY)
    if waiting is not None and waiting.stalled and (red is None or red.phase not in (FAILED, SUCCEEDED)):
        out.append(f"reducer: {waiting.message}")
    return out


def _stall_reason(entries: list[dict[str, Any]], reducer: dict[str, Any]) -> str:
    reasons = [
        e["reason"]
        for e in [*entries, reducer]
        if e.get("reason") and e.get("phase") not in (FAILED, SUCCEEDED)
    ]
    return reasons[0] if reasons else REASON_WAITING


REDUCER_KEY = "reducer"  # the key of the reducer in ``blocked``


def _reducer_entry(
    reducer: JobObservation | None, blocked: Mapping[str, Waiting] | None = None
) -> dict[str, Any]:
    if reducer is None:
        entry: dict[str, Any] = {"phase": PENDING}
        if blocked and REDUCER_KEY in blocked:
            entry.update(reason=blocked[REDUCER_KEY].reason, message=_clip(blocked[REDUCER_KEY].message))
        return entry
    entry = {"jobName": reducer.name, "phase": reducer.phase}
    if reducer.phase == FAILED:
        entry["message"] = _clip(reducer.message or reducer.reason or "reducer Job failed")
        if reducer.reason:
            entry["reason"] = reducer.reason
    elif reducer.waiting is not None:
        entry.update(reason=reducer.waiting.reason, message=_clip(reducer.waiting.message))
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
        # a merge patch keeps what it does not mention: drop what described a valid spec before
        **{key: None for key in STALE_WHEN_INVALID if (previous or {}).get(key) is not None},
    }


STALE_WHEN_INVALID = (
    "progress",
    "checkpointsTotal",
    "checkpointsSucceeded",
    "checkpointsFailed",
    "checkpointsRunning",
    "checkpointsPending",
    "checkpoints",
    "reducer",
)


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
        {
            "type": CONDITION_RECONCILING,
            "status": "True" if working or phase == PENDING else "False",
            "reason": reason,
            "message": message,
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
