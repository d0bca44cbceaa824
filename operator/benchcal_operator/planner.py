"""Pure reconcile decisions: (run, observed Jobs, settings) -> a plan of actions.

Only new work runs (issue 15): a checkpoint gets an evaluator Job only when no Job of this run
stands for its current (benchmark, shots) pairs (``observe.evaluators_by_checkpoint``: the Job of
those pairs, or a Succeeded one covering them); the reducer Job is one per reduction input
(``benchcal.work.reduction_key``), so a generation that adds checkpoints gets a new one and a
generation that changes nothing the reducer reads (suspend, tolerations) creates nothing.

Level-based: the same inputs always give the same actions, so running it again after a crash,
a missed event or a stale index is harmless (creates of existing names come back 409 and
count as done). Evaluator Jobs are created in spec order up to the concurrency limit; after
the first failure no new evaluator starts (the reducer could not run anyway), finished
checkpoints' results are kept; the reducer starts only when every checkpoint succeeded.

Ownership is by UID: Jobs whose controller is another CalibrationRun of the same name (deleted,
not yet garbage-collected) are not this run's; a checkpoint whose Job name such a Job still
holds waits (``Plan.blocked``) instead of adopting it. ``spec.suspend`` is applied only to Jobs
Kueue does not own, and only Jobs the operator suspended itself are ever resumed. Every plan that
creates a Job first ensures the run's own ServiceAccount, Role, RoleBinding and summary
ConfigMaps (``EnsureObjects``, benchcal_operator.identity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchcal import naming, work
from benchcal.lifecycle import ACTIVE, FAILED, FINISHED, SUCCEEDED, TERMINAL
from benchcal.spec import CalibrationRun
from benchcal_operator import identity
from benchcal_operator import jobs as builders
from benchcal_operator.diagnose import Waiting
from benchcal_operator.observe import JobObservation, evaluator_jobs, evaluators_by_checkpoint, reducer_of
from benchcal_operator.settings import Settings
from benchcal_operator.status import REDUCER_KEY

GC_WAIT = "WaitingForGarbageCollection"
EARLIER_REDUCER_WAIT = "WaitingForEarlierReducer"


@dataclass(frozen=True)
class CreateJob:
    name: str
    component: str
    checkpoint: str
    manifest: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class EnsureObjects:
    """The run's own ServiceAccount, Role, RoleBinding and summary ConfigMaps (identity.py), made
    before the Jobs of this plan: created when missing, 409 of ours counts as done."""

    manifests: list[dict[str, Any]] = field(compare=False, repr=False)
    for_keys: tuple[str, ...] = ()  # checkpoints (or "reducer") of the Jobs that wait for them


@dataclass(frozen=True)
class SetJobSuspend:
    name: str
    suspend: bool


Action = CreateJob | SetJobSuspend | EnsureObjects


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    blocked: dict[str, Waiting] = field(default_factory=dict)  # checkpoint (or "reducer") -> why


def rejection(run: CalibrationRun, settings: Settings) -> str:
    """Operator-level policy (the CalibrationRun is valid, but this operator refuses it); '' if allowed."""
    if run.evaluator.trust_remote_code and not settings.allow_trust_remote_code:
        return (
            "spec.evaluator.trustRemoteCode: not allowed by this operator (BENCHCAL_ALLOW_TRUST_REMOTE_CODE is "
            "false); remove it or ask the cluster admin to allow it"
        )
    return ""


def split_by_owner(
    run: CalibrationRun, observed: Mapping[str, JobObservation]
) -> tuple[dict[str, JobObservation], dict[str, JobObservation]]:
    """(this run's Jobs, Jobs of a deleted run of the same name) by controller owner UID."""
    own, stale = {}, {}
    for name, obs in observed.items():
        (own if not run.uid or not obs.owner_uid or obs.owner_uid == run.uid else stale)[name] = obs
    return own, stale


def _stale_wait(name: str) -> Waiting:
    return Waiting(
        GC_WAIT,
        f"Job {name} still belongs to a deleted CalibrationRun of the same name; waiting for the garbage "
        "collector to remove it",
    )


def kueue_owned(run: CalibrationRun, obs: JobObservation) -> bool:
    return obs.kueue or bool(run.queue_name or run.labels.get(naming.KUEUE_QUEUE_LABEL))


def _suspends(run: CalibrationRun, evaluators: list[JobObservation]) -> list[Action]:
    actions: list[Action] = []
    for obs in evaluators:
        if obs.phase in FINISHED:
            continue
        if run.suspend and not obs.suspended and not kueue_owned(run, obs):
            actions.append(SetJobSuspend(obs.name, True))
        elif not run.suspend and obs.suspended and obs.suspended_by_operator:
            actions.append(SetJobSuspend(obs.name, False))
    return actions


def with_identity(run: CalibrationRun, plan: Plan) -> Plan:
    """Put the run's own objects before the first Job the plan creates (level-based: every plan
    that creates a Job makes sure again, so a deleted ServiceAccount or Role comes back)."""
    creates = [a for a in plan.actions if isinstance(a, CreateJob)]
    if creates:
        keys = tuple(a.checkpoint or REDUCER_KEY for a in creates)
        at = plan.actions.index(creates[0])
        plan.actions.insert(at, EnsureObjects(identity.identity_objects(run), keys))
    return plan


def decide(
    run: CalibrationRun,
    observed: Mapping[str, JobObservation],
    settings: Settings,
    stale: Mapping[str, JobObservation] | None = None,
) -> Plan:
    """``observed``: this run's Jobs by name; ``stale``: same-named Jobs of a deleted run."""
    return with_identity(run, _decide(run, observed, settings, stale))


def _decide(
    run: CalibrationRun,
    observed: Mapping[str, JobObservation],
    settings: Settings,
    stale: Mapping[str, JobObservation] | None = None,
) -> Plan:
    plan = Plan()
    if rejection(run, settings):
        return plan
    stale = stale or {}
    evaluators = evaluators_by_checkpoint(run, observed)
    plan.actions += _suspends(run, evaluator_jobs(observed))
    if run.suspend:
        return plan
    if any(obs.phase == FAILED for obs in evaluators.values()):
        return plan
    if all(evaluators.get(ck.name) and evaluators[ck.name].phase == SUCCEEDED for ck in run.checkpoints):
        name = naming.reducer_job_name(run.name, work.reduction_key(run))
        current = reducer_of(run, observed)
        earlier = [
            o
            for o in observed.values()
            if o.component == naming.REDUCER and o is not current and o.phase in ACTIVE
        ]
        if current is None and earlier:
            # two reducers would race for status.classification (the later finisher wins, whatever
            # its generation): the new reduction starts when the earlier one has ended
            plan.blocked[REDUCER_KEY] = Waiting(
                EARLIER_REDUCER_WAIT,
                f"reducer Job {earlier[0].name} of an earlier spec is still running; this generation's "
                "reduction starts when it ends",
            )
        elif current is None:
            if name in stale:
                plan.blocked[REDUCER_KEY] = _stale_wait(name)
            else:
                manifest = builders.build_reducer_job(run, settings)
                plan.actions.append(CreateJob(name, naming.REDUCER, "", manifest))
        return plan

    running = sum(1 for obs in evaluator_jobs(observed) if obs.phase in ACTIVE)
    key = work.pairs_key(work.run_pairs(run))
    limit = settings.max_running_checkpoints or len(run.checkpoints)
    for ckpt in run.checkpoints:
        if running >= limit:
            break
        if ckpt.name in evaluators:
            continue
        name = naming.evaluator_job_name(run.name, ckpt.name, key)
        if name in stale:
            plan.blocked[ckpt.name] = _stale_wait(name)
            continue
        manifest = builders.build_evaluator_job(run, ckpt, settings)
        plan.actions.append(CreateJob(name, naming.EVALUATOR, ckpt.name, manifest))
        running += 1
    return plan


def unfinished(status: Mapping[str, Any] | None) -> bool:
    """Whether the resync loop should keep re-syncing this run."""
    return (status or {}).get("phase") not in TERMINAL
