"""The only kopf module: registers handlers and glues the pure core to the API.

Every handler funnels into ``reconcile``: read the run fresh, parse it (benchcal.spec), read
its child Jobs from the kopf index, ask the planner what to do, do it, derive the whole
status, and write it with one merge patch when it changed. Run it with
``kopf run -m benchcal_operator.handlers`` or ``benchcal operator``.

Watching: CalibrationRuns and our Jobs through low-level ``on.event`` handlers (no kopf
annotations or finalizers on Jobs; a restart replays every object, which re-syncs), plus a slow
timer only while a run is unfinished (its finalizer is dropped once the run finishes).

Coalescing: a run gets many triggers in bursts (each Job's events, the echo of our own status
write, the timer). Per run, at most one reconcile runs and at most one more is queued; a trigger
arriving while one is queued joins it instead of queueing another full read-plan-write (the queued
one starts after the trigger arrived, so it sees what the trigger announced). A Job event whose
observation (``observe_job``) equals the one already reconciled for that Job triggers nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import kopf

from benchcal import naming
from benchcal.api import GROUP, PLURAL, VERSION
from benchcal.errors import BadInput
from benchcal.lifecycle import FAILED
from benchcal.spec import parse_run
from benchcal_operator import k8s, metrics, planner
from benchcal_operator import settings as settings_mod
from benchcal_operator.coalesce import Coalescer
from benchcal_operator.status import (
    JobObservation,
    derive_status,
    invalid_status,
    observe_job,
    status_changed,
    transition_events,
)

SETTINGS = settings_mod.from_env()
JOB_FILTER = {naming.MANAGED_BY_LABEL: naming.MANAGED_BY, naming.RUN_LABEL: kopf.PRESENT}
_locks: dict[tuple[str, str], asyncio.Lock] = {}
_coalescer = Coalescer()  # at most one reconcile per run running, at most one queued
_jobs_seen: dict[tuple[str, str], JobObservation] = {}  # (ns, Job) -> observation last reconciled
# Jobs this process created that the index may not show yet: run -> Job name -> (observation, when)
Created = dict[str, tuple[JobObservation, float]]
_created: dict[tuple[str, str], Created] = {}
CREATED_GRACE_SECONDS = 30.0  # after this, trust the index again (e.g. the Job was deleted at once)

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _post_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(dict(body), type=type_, reason=reason, message=message)


async def _with_messages(
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


def _expect_created(created: Created, observed: dict[str, JobObservation]) -> None:
    """Add the Jobs we created that the kopf index does not show yet (it trails our own creates)."""
    now = time.monotonic()
    for job, (obs, at) in list(created.items()):
        if job in observed or now - at > CREATED_GRACE_SECONDS:
            del created[job]
        else:
            observed[job] = obs


async def reconcile(
    namespace: str,
    name: str,
    index: Mapping[tuple[str, str], Iterable[JobObservation]],
    *,
    settings: settings_mod.Settings = SETTINGS,
    api: Any = k8s,  # benchcal_operator.k8s, or a stand-in with the same coroutines (tests)
    post_event: EventPoster = _post_event,
    logger: logging.Logger | logging.LoggerAdapter = logging.getLogger(__name__),
    recent: Created | None = None,
) -> dict[str, Any] | None:
    """One level-based reconcile of one run; returns the status it computed (None if gone).

    ``recent``: this process's memory of the run's Jobs it created and the index may not show
    yet; read and updated here, so back-to-back reconciles do not create a Job twice (409).
    """
    recent = {} if recent is None else recent
    lock = _locks.setdefault((namespace, name), asyncio.Lock())
    async with lock:
        metrics.RECONCILES.inc()
        body = await api.get_run(namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            metrics.record_phase(namespace, name, None)
            return None
        previous = body.get("status") or {}
        generation = int(body["metadata"].get("generation") or 0)
        try:
            run = parse_run(body)
        except BadInput as exc:
            logger.warning("CalibrationRun %s/%s rejected: %s", namespace, name, exc)
            new = invalid_status(str(exc), generation, previous=previous, now=_now())
            return await _write(body, previous, new, api, post_event, namespace, name)

        observed = {obs.name: obs for obs in index.get((namespace, name), ())}
        _expect_created(recent, observed)
        observed = await _with_messages(namespace, observed, previous, api)
        rejection = planner.rejection(run, settings)
        for action in planner.decide(run, observed, settings):
            if isinstance(action, planner.CreateJob):
                try:
                    created = await api.create_job(action.manifest)
                except k8s.NameConflict as exc:
                    rejection = (
                        f"metadata.name: {exc}; rename this CalibrationRun or checkpoint {action.checkpoint}"
                    )
                    break
                if created:
                    # until the index has it, later reconciles count it too (no 409 re-creates)
                    recent[action.name] = (observe_job(action.manifest), time.monotonic())
                    metrics.JOBS_CREATED.labels(component=action.component).inc()
                    post_event(body, "Normal", "JobCreated", f"created {action.component} Job {action.name}")
                    logger.info("created %s Job %s", action.component, action.name)
                # the index may lag behind our own create: count the Job as running now
                observed.setdefault(action.name, observe_job(action.manifest))
            else:
                await api.set_job_suspend(namespace, action.name, action.suspend)
                logger.info("set suspend=%s on Job %s", action.suspend, action.name)
        new = derive_status(run, observed, previous=previous, now=_now(), rejection=rejection)
        return await _write(body, previous, new, api, post_event, namespace, name)


async def _write(
    body: Mapping[str, Any],
    previous: Mapping[str, Any],
    new: dict[str, Any],
    api: Any,
    post_event: EventPoster,
    namespace: str,
    name: str,
) -> dict[str, Any]:
    if status_changed(previous, new):
        await api.patch_run_status(namespace, name, new)
        for event in transition_events(previous, new):
            post_event(body, event.type, event.reason, event.message)
    metrics.record_phase(namespace, name, new["phase"])
    return new


async def _guarded(namespace: str, name: str, index: Any, logger: Any) -> None:
    """Translate API errors once, at the edge (kopf retries TemporaryError; logs the rest)."""
    try:
        recent = _created.setdefault((namespace, name), {})
        await _coalescer.run(
            (namespace, name), lambda: reconcile(namespace, name, index, logger=logger, recent=recent)
        )
    except k8s.ApiError as exc:
        metrics.RECONCILE_ERRORS.labels(kind=str(exc.status)).inc()
        if exc.status == 403:
            raise kopf.PermanentError(
                f"forbidden: {exc}; the operator's ServiceAccount lacks a verb (see docs/operations.md, RBAC)"
            ) from exc
        raise kopf.TemporaryError(f"API error, will retry: {exc}", delay=15) from exc
    except Exception:
        metrics.RECONCILE_ERRORS.labels(kind="internal").inc()
        raise


# ---- kopf registrations --------------------------------------------------------------------------


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
    prefix = "benchcal.dev"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{prefix}/resync"
    settings.posting.level = logging.WARNING  # our Events are posted explicitly; no log-line echoes
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    try:
        metrics.serve(SETTINGS.metrics_port)
    except OSError as exc:  # metrics are not worth refusing to reconcile over
        logger.error("metrics endpoint on port %s not started: %s", SETTINGS.metrics_port, exc)
    logger.info("benchcal operator settings: %s", SETTINGS)


@kopf.index("batch", "v1", "jobs", labels=JOB_FILTER)
async def jobs_by_run(  # async: no worker-thread hop per Job event
    namespace: str, labels: Mapping[str, str], body: Any, **_: Any
) -> dict[tuple[str, str], JobObservation]:
    return {(namespace, labels[naming.RUN_LABEL]): observe_job(body)}


@kopf.on.event("batch", "v1", "jobs", labels=JOB_FILTER)
async def job_event(
    event: Mapping[str, Any],
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    body: Any,
    jobs_by_run: Any,
    logger: Any,
    **_: Any,
) -> None:
    key = (namespace, name)
    if event.get("type") == "DELETED":
        _jobs_seen.pop(key, None)
        await _guarded(namespace, labels[naming.RUN_LABEL], jobs_by_run, logger)
        return
    run = labels[naming.RUN_LABEL]
    observed = observe_job(body)
    ours = _created.get((namespace, run), {}).get(name)
    if _jobs_seen.get(key, ours[0] if ours else None) == observed:
        # e.g. pod readiness counters, or the ADDED event of a Job we just created and counted:
        # nothing the run's status is made of changed
        _jobs_seen[key] = observed
        return
    await _guarded(namespace, run, jobs_by_run, logger)
    _jobs_seen[key] = observed


@kopf.on.event(GROUP, VERSION, PLURAL)
async def run_event(
    event: Mapping[str, Any], namespace: str, name: str, jobs_by_run: Any, logger: Any, **_: Any
) -> None:
    if event.get("type") == "DELETED":
        metrics.record_phase(namespace, name, None)
        _locks.pop((namespace, name), None)
        _created.pop((namespace, name), None)
        return
    await _guarded(namespace, name, jobs_by_run, logger)


def _unfinished(status: Mapping[str, Any], **_: Any) -> bool:
    return planner.unfinished(status)


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.resync_seconds,
    initial_delay=SETTINGS.resync_seconds,
    when=_unfinished,
)
async def resync(namespace: str, name: str, jobs_by_run: Any, logger: Any, **_: Any) -> None:
    await _guarded(namespace, name, jobs_by_run, logger)
