"""Carrying out a plan, and reading what the index cannot show: the I/O half of a reconcile.

``Executor.run`` creates the run's own ServiceAccount, Role, RoleBinding and summary ConfigMaps
(before its Jobs; one it cannot create makes the Jobs waiting for it ``Stalled`` with the object
and the server's message), creates the run's Jobs and (un)suspends Jobs, and turns what the API
server answers into status instead of retries: a 422 (a Job the server refuses, e.g. an invalid
label or an Indexed name too long) makes the run ``Invalid`` with the server's message (reason
``JobRejected``, a Warning event, never retried for this generation); a 403 the RBAC authorizer
gave, or a quota, or a deleted namesake's object still in the way, makes the checkpoint wait with
the server's words (``blocked``). ``with_messages`` attaches failed Jobs' termination messages;
``with_diagnosis`` asks events, pods and Kueue Workloads why a Job makes no progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from benchcal import naming
from benchcal.lifecycle import FAILED, REASON_JOB_REJECTED, REASON_NOT_ALLOWED
from benchcal.spec import CalibrationRun
from benchcal_operator import diagnose, k8s, metrics, planner
from benchcal_operator.diagnose import Waiting
from benchcal_operator.observe import JobObservation, observe_job
from benchcal_operator.settings import Settings
from benchcal_operator.status import REDUCER_KEY

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


def _forbidden_wait(exc: k8s.ApiError, what: str) -> Waiting:
    cause = k8s.forbidden_cause(exc.message)
    if cause == "rbac":
        return Waiting(
            "OperatorForbidden",
            f"creating {what}: {exc.message} (the operator's ServiceAccount lacks this permission, or a "
            "permission it would grant; docs/operations.md, RBAC)",
            stalled=True,
        )
    reason = {"quota": "QuotaExceeded", "terminating": "NamespaceTerminating"}.get(cause, "Forbidden")
    return Waiting(reason, f"creating {what}: {exc.message}")


class Executor:
    def __init__(
        self,
        run: CalibrationRun,
        body: Mapping[str, Any],
        api: Any,
        post_event: EventPoster,
        logger: logging.Logger | logging.LoggerAdapter,
        recent: dict[str, tuple[JobObservation, float]],
    ):
        self.run_, self.body, self.api, self.post_event, self.logger = run, body, api, post_event, logger
        self.recent = recent
        self.rejection = ""
        self.rejection_reason = REASON_NOT_ALLOWED
        self.blocked: dict[str, Waiting] = {}

    async def run(self, plan: planner.Plan, observed: dict[str, JobObservation]) -> None:
        self.blocked.update(plan.blocked)
        for action in plan.actions:
            if isinstance(action, planner.SetJobSuspend):
                await self.api.set_job_suspend(
                    self.run_.namespace,
                    action.name,
                    action.suspend,
                    naming.SUSPENDED_BY_ANNOTATION,
                    naming.SUSPENDED_BY_OPERATOR,
                )
                self.logger.info("set suspend=%s on Job %s", action.suspend, action.name)
            elif isinstance(action, planner.EnsureObjects):
                if not await self._ensure(action):
                    break  # no Job whose pods would be refused (no ServiceAccount) or could not publish
            elif not await self._create(action, observed):
                break

    async def _ensure(self, action: planner.EnsureObjects) -> bool:
        """Create the run's own objects; False (and why, in status) if one cannot be made."""
        for manifest in action.manifests:
            what = f"{manifest['kind']} {manifest['metadata']['name']}"
            try:
                if await self.api.create_owned(manifest):
                    self.logger.info("created %s", what)
                continue
            except k8s.StaleChild as exc:
                waiting = Waiting(planner.GC_WAIT, f"{exc.message}; waiting for the garbage collector")
            except k8s.NameConflict as exc:
                self.rejection = f"metadata.name: {exc.message}; rename this CalibrationRun"
                return False
            except k8s.ApiError as exc:
                if exc.status in (400, 422):
                    self.rejection = f"the API server refused {what} for this run's pods: {exc.message}"
                    self.rejection_reason = REASON_JOB_REJECTED
                    self.post_event(self.body, "Warning", REASON_JOB_REJECTED, self.rejection[:1024])
                    return False
                if exc.status != 403:
                    raise
                found = _forbidden_wait(exc, what)
                # without its ServiceAccount, Role or ConfigMaps no pod of the run can work: Stalled
                waiting = Waiting(found.reason, found.message, stalled=True)
                self.logger.warning("%s", waiting.message)
            for key in action.for_keys:
                self.blocked[key] = waiting
            return False
        return True

    async def _create(self, action: planner.CreateJob, observed: dict[str, JobObservation]) -> bool:
        """Create one Job; False stops the plan (the run is rejected)."""
        key = action.checkpoint or REDUCER_KEY
        what = f"{action.component} Job {action.name}"
        try:
            created = await self.api.create_job(action.manifest)
        except k8s.StaleChild as exc:
            self.blocked[key] = Waiting(planner.GC_WAIT, f"{exc.message}; waiting for the garbage collector")
            return True
        except k8s.NameConflict as exc:
            self.rejection = (
                f"metadata.name: {exc.message}; rename this CalibrationRun or checkpoint {action.checkpoint}"
            )
            return False
        except k8s.ApiError as exc:
            if exc.status in (400, 422):
                self.rejection = f"the API server refused {what} built from this spec: {exc.message}"
                self.rejection_reason = REASON_JOB_REJECTED
                self.post_event(self.body, "Warning", REASON_JOB_REJECTED, self.rejection[:1024])
                self.logger.warning("%s", self.rejection)
                return False
            if exc.status == 403:
                self.blocked[key] = _forbidden_wait(exc, what)
                self.logger.warning("%s", self.blocked[key].message)
                return not self.blocked[key].stalled  # the operator's own rights: stop trying
            raise
        if created:
            # until the index has it, later reconciles count it too (no 409 re-creates)
            self.recent[action.name] = (observe_job(action.manifest), time.monotonic())
            metrics.JOBS_CREATED.labels(component=action.component).inc()
            self.post_event(self.body, "Normal", "JobCreated", f"created {what}")
            self.logger.info("created %s", what)
        # the index may lag behind our own create: count the Job as running now
        observed.setdefault(action.name, observe_job(action.manifest))
        return True


async def with_messages(
    namespace: str, observed: dict[str, JobObservation], previous: Mapping[str, Any], api: Any
) -> dict[str, JobObservation]:
    """Attach the evaluator's termination message to newly failed Jobs (read once, from pods)."""
    recorded = {c.get("jobName"): c for c in previous.get("checkpoints", [])}
    recorded[(previous.get("reducer") or {}).get("jobName")] = previous.get("reducer") or {}
    out = dict(observed)
    for name, obs in observed.items():
        old = recorded.get(name) or {}
        if obs.phase != FAILED:
            continue
        if old.get("phase") == FAILED and old.get("message"):
            out[name] = replace(obs, message=old["message"])
            continue
        detail = await api.termination_message(namespace, name)
        if detail:
            out[name] = replace(obs, message=f"{obs.reason or 'Failed'}: {detail}")
    return out


async def _diagnose_one(namespace: str, obs: JobObservation, api: Any, settings: Settings) -> Waiting | None:
    if obs.suspended:
        return diagnose.from_workloads(await api.job_workloads(namespace, obs.uid))
    if obs.active == 0:
        found = diagnose.from_events(await api.job_events(namespace, obs.uid))
        if found is not None:
            return found
    return diagnose.from_pods(await api.job_pods(namespace, obs.name), settings.unschedulable_seconds)


async def with_diagnosis(
    namespace: str,
    observed: dict[str, JobObservation],
    api: Any,
    settings: Settings,
    logger: logging.Logger | logging.LoggerAdapter,
) -> dict[str, JobObservation]:
    """Attach ``waiting`` to Jobs the index says make no progress (no pods, not running, queued)."""
    out = dict(observed)
    for name, obs in observed.items():
        age = diagnose.seconds_since(obs.created_at)
        if not diagnose.needs_diagnosis(
            obs.phase, obs.active, obs.ready, obs.suspended, obs.suspended_by_operator, age
        ):
            continue
        try:
            waiting = await _diagnose_one(namespace, obs, api, settings)
        except k8s.ApiError as exc:  # a diagnosis is worth a log line, never a failed reconcile
            logger.warning("cannot diagnose Job %s/%s: %s", namespace, name, exc)
            continue
        if waiting is not None:
            out[name] = replace(obs, waiting=waiting)
    return out
