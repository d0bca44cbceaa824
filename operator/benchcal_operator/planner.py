"""Pure reconcile decisions: (run, observed Jobs, settings) -> actions.

Level-based: the same inputs always give the same actions, so running it again after a crash,
a missed event or a stale index is harmless (creates of existing names come back 409 and
count as done). Evaluator Jobs are created in spec order up to the concurrency limit; after
the first failure no new evaluator starts (the reducer could not run anyway), finished
checkpoints' results are kept; the reducer starts only when every checkpoint succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchcal import naming
from benchcal.lifecycle import ACTIVE, FAILED, FINISHED, SUCCEEDED, TERMINAL
from benchcal.spec import CalibrationRun
from benchcal_operator import jobs as builders
from benchcal_operator.settings import Settings
from benchcal_operator.status import JobObservation


@dataclass(frozen=True)
class CreateJob:
    name: str
    component: str
    checkpoint: str
    manifest: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class SetJobSuspend:
    name: str
    suspend: bool


Action = CreateJob | SetJobSuspend


def rejection(run: CalibrationRun, settings: Settings) -> str:
    """Operator-level policy (the CalibrationRun is valid, but this operator refuses it); '' if allowed."""
    if run.evaluator.trust_remote_code and not settings.allow_trust_remote_code:
        return (
            "spec.evaluator.trustRemoteCode: not allowed by this operator (BENCHCAL_ALLOW_TRUST_REMOTE_CODE is "
            "false); remove it or ask the cluster admin to allow it"
        )
    return ""


def decide(run: CalibrationRun, observed: Mapping[str, JobObservation], settings: Settings) -> list[Action]:
    if rejection(run, settings):
        return []
    evaluators = {
        ck.name: observed.get(naming.evaluator_job_name(run.name, ck.name)) for ck in run.checkpoints
    }
    kueue_managed = bool(run.queue_name or run.labels.get(naming.KUEUE_QUEUE_LABEL))
    actions: list[Action] = []

    # suspend: stop our own unfinished Jobs unless Kueue owns spec.suspend (never fight Kueue)
    if not kueue_managed:
        for obs in evaluators.values():
            if obs and obs.phase not in FINISHED and obs.suspended != run.suspend:
                actions.append(SetJobSuspend(obs.name, run.suspend))
    if run.suspend:
        return actions

    if any(obs and obs.phase == FAILED for obs in evaluators.values()):
        return actions
    if all(obs and obs.phase == SUCCEEDED for obs in evaluators.values()):
        reducer_name = naming.reducer_job_name(run.name)
        if reducer_name not in observed:
            manifest = builders.build_reducer_job(run, settings)
            actions.append(CreateJob(reducer_name, naming.REDUCER, "", manifest))
        return actions

    running = sum(1 for obs in evaluators.values() if obs and obs.phase in ACTIVE)
    limit = settings.max_running_checkpoints or len(run.checkpoints)
    for ckpt in run.checkpoints:
        if running >= limit:
            break
        if evaluators[ckpt.name] is None:
            manifest = builders.build_evaluator_job(run, ckpt, settings)
            actions.append(CreateJob(manifest["metadata"]["name"], naming.EVALUATOR, ckpt.name, manifest))
            running += 1
    return actions


def unfinished(status: Mapping[str, Any] | None) -> bool:
    """Whether the safety-net timer should keep re-syncing this run."""
    return (status or {}).get("phase") not in TERMINAL
