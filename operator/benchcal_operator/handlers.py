"""The only kopf module: registers handlers and glues the pure core to the API.

Every handler funnels into ``reconcile``: read the run fresh, parse it (benchcal.spec), read
its child Jobs from the kopf index (this run's by owner UID), diagnose the ones that make no
progress, ask the planner what to do, do it, derive the whole status, and write it with one
merge patch when it changed. Run it with ``kopf run -m benchcal_operator.handlers`` or
``benchcal operator``.

Watching: CalibrationRuns and our Jobs through low-level ``on.event`` handlers (no kopf
annotations or finalizers on Jobs; a restart replays every object, which re-syncs); the Job
watch is filtered by label on the server. **No finalizer on runs**: there is nothing outside the
cluster to clean up (children go with their run by ownerReference), so deleting a run, its
namespace or the CRD never waits for the operator. Instead of kopf timers (which always add a
finalizer), a loop started at start-up walks a kopf index of unfinished runs: every run at least
every ``resync_seconds``, runs whose Jobs look stuck every ``stall_check_seconds``. The legacy
``benchcal.dev/resync`` finalizer of older versions stays configured as kopf's finalizer name, so
kopf removes it from every run it sees (no handler requires it any more).

Coalescing: a run gets many triggers in bursts (each Job's events, the echo of our own status
write, the loop). Per run, at most one reconcile runs and at most one more is queued; a trigger
arriving while one is queued joins it. A Job event whose observation (``observe_job``) equals the
one already reconciled for that Job triggers nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import kopf

from benchcal import naming
from benchcal.api import GROUP, PLURAL, VERSION
from benchcal.errors import BadInput
from benchcal.lifecycle import CONDITION_ACCEPTED, INVALID, REASON_JOB_REJECTED, REASON_NOT_ALLOWED
from benchcal.spec import parse_run
from benchcal_operator import k8s, metrics, planner
from benchcal_operator import settings as settings_mod
from benchcal_operator.coalesce import Coalescer
from benchcal_operator.execute import Executor, with_diagnosis, with_messages
from benchcal_operator.observe import JobObservation, observe_job
from benchcal_operator.status import derive_status, invalid_status, status_changed, transition_events

SETTINGS = settings_mod.from_env()
JOB_FILTER = {naming.MANAGED_BY_LABEL: naming.MANAGED_BY, naming.RUN_LABEL: kopf.PRESENT}
LEGACY_FINALIZER = "benchcal.dev/resync"  # added by kopf timers up to 0.1; kopf removes it now
_locks: dict[tuple[str, str], asyncio.Lock] = {}
_coalescer = Coalescer()  # at most one reconcile per run running, at most one queued
_jobs_seen: dict[tuple[str, str], JobObservation] = {}  # (ns, Job) -> observation last reconciled
# Jobs this process created that the index may not show yet: run -> Job name -> (observation, when)
Created = dict[str, tuple[JobObservation, float]]
_created: dict[tuple[str, str], Created] = {}
_loop_task: list[asyncio.Task[None]] = []
CREATED_GRACE_SECONDS = 30.0  # after this, trust the index again (e.g. the Job was deleted at once)

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _post_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(dict(body), type=type_, reason=reason, message=message)


def _expect_created(created: Created, observed: dict[str, JobObservation]) -> None:
    """Add the Jobs we created that the kopf index does not show yet (it trails our own creates)."""
    now = time.monotonic()
    for job, (obs, at) in list(created.items()):
        if job in observed or now - at > CREATED_GRACE_SECONDS:
            del created[job]
        else:
            observed[job] = obs


def _rejected(previous: Mapping[str, Any], generation: int) -> bool:
    """This generation already produced a Job the API server refused: do not retry the create."""
    if previous.get("phase") != INVALID or previous.get("observedGeneration") != generation:
        return False
    accepted = next((c for c in previous.get("conditions") or [] if c.get("type") == CONDITION_ACCEPTED), {})
    return accepted.get("reason") == REASON_JOB_REJECTED


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
        if _rejected(previous, generation):
            metrics.record_phase(namespace, name, INVALID)
            return dict(previous)  # fix the spec (evaluator, queueName) and the generation moves on

        observed = {obs.name: obs for obs in index.get((namespace, name), ())}
        _expect_created(recent, observed)
        own, stale = planner.split_by_owner(run, observed)
        own = await with_messages(namespace, own, previous, api)
        own = await with_diagnosis(namespace, own, api, settings, logger)
        plan = planner.decide(run, own, settings, stale)
        executor = Executor(run, body, api, post_event, logger, recent)
        await executor.run(plan, own)
        rejection = executor.rejection or planner.rejection(run, settings)
        reason = executor.rejection_reason if executor.rejection else REASON_NOT_ALLOWED
        new = derive_status(
            run,
            own,
            previous=previous,
            now=_now(),
            rejection=rejection,
            rejection_reason=reason,
            blocked=executor.blocked,
        )
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


def describe_api_error(exc: k8s.ApiError) -> str:
    """The server's words, plus what they mean (only an RBAC answer is blamed on RBAC)."""
    if exc.status != 403:
        return str(exc)
    hint = {
        "rbac": "the operator's ServiceAccount lacks this permission, or one it would grant "
        "(see docs/operations.md, RBAC)",
        "terminating": "the namespace is being deleted",
        "quota": "a ResourceQuota refuses it",
    }.get(k8s.forbidden_cause(exc.message), "an admission plugin refused it")
    return f"forbidden: {exc.message} ({hint})"


async def _guarded(namespace: str, name: str, index: Any, logger: Any) -> None:
    """Translate API errors once, at the edge (kopf retries TemporaryError; logs the rest)."""
    try:
        recent = _created.setdefault((namespace, name), {})
        await _coalescer.run(
            (namespace, name), lambda: reconcile(namespace, name, index, logger=logger, recent=recent)
        )
    except k8s.ApiError as exc:
        metrics.RECONCILE_ERRORS.labels(kind=str(exc.status)).inc()
        if exc.rbac:
            raise kopf.PermanentError(describe_api_error(exc)) from exc
        # the resync loop retries too: event handlers are never retried by kopf (they only log)
        raise kopf.TemporaryError(f"API error, will retry: {describe_api_error(exc)}", delay=15) from exc
    except Exception:
        metrics.RECONCILE_ERRORS.labels(kind="internal").inc()
        raise


# ---- the resync loop (no timers: they would put a finalizer on every run) ---------------------------


async def _reconcile_quietly(namespace: str, name: str, jobs_index: Any, logger: Any) -> None:
    try:
        await _guarded(namespace, name, jobs_index, logger)
    except (kopf.PermanentError, kopf.TemporaryError) as exc:
        logger.warning("resync of %s/%s: %s", namespace, name, exc)
    except Exception:
        logger.exception("resync of %s/%s failed", namespace, name)


def due_runs(
    runs: Iterable[tuple[str, str]],
    jobs_index: Mapping[tuple[str, str], Iterable[JobObservation]],
    last: dict[tuple[str, str], float],
    now: float,
    settings: settings_mod.Settings,
) -> list[tuple[str, str]]:
    """Unfinished runs to reconcile now: not seen for resync_seconds, or stuck and not seen lately."""
    from benchcal_operator.diagnose import needs_diagnosis, seconds_since

    due = []
    for key in runs:
        since = now - last.setdefault(key, now)
        stuck = any(
            needs_diagnosis(
                o.phase, o.active, o.ready, o.suspended, o.suspended_by_operator, seconds_since(o.created_at)
            )
            for o in jobs_index.get(key, ())
        )
        if since >= settings.resync_seconds or (stuck and since >= settings.stall_check_seconds):
            due.append(key)
            last[key] = now
    for key in [k for k in last if k not in set(runs)]:
        del last[key]
    return due


async def resync_loop(runs_index: Any, jobs_index: Any, settings: settings_mod.Settings, logger: Any) -> None:
    last: dict[tuple[str, str], float] = {}
    tick = min(settings.stall_check_seconds, settings.resync_seconds)
    while True:
        await asyncio.sleep(tick)
        due = due_runs(list(runs_index.keys()), jobs_index, last, time.monotonic(), settings)
        # at most API_THREADS at once: the loop must not starve event-driven reconciles
        for start in range(0, len(due), k8s.API_THREADS):
            batch = due[start : start + k8s.API_THREADS]
            await asyncio.gather(*(_reconcile_quietly(ns, n, jobs_index, logger) for ns, n in batch))


# ---- kopf registrations --------------------------------------------------------------------------


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, logger: Any, unfinished_runs: Any, jobs_by_run: Any, **_: Any
) -> None:
    prefix = "benchcal.dev"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    # No handler needs a finalizer; naming the legacy one makes kopf remove it where it remains.
    settings.persistence.finalizer = LEGACY_FINALIZER
    settings.posting.level = logging.WARNING  # our Events are posted explicitly; no log-line echoes
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    # filter the Job watch on the server: the operator never holds unrelated Jobs in memory
    settings.watching.label_selectors["batch", "jobs"] = f"{naming.MANAGED_BY_LABEL}={naming.MANAGED_BY}"
    try:
        metrics.serve(SETTINGS.metrics_port)
    except OSError as exc:  # metrics are not worth refusing to reconcile over
        logger.error("metrics endpoint on port %s not started: %s", SETTINGS.metrics_port, exc)
    logger.info("benchcal operator settings: %s", SETTINGS)
    _loop_task.append(asyncio.create_task(resync_loop(unfinished_runs, jobs_by_run, SETTINGS, logger)))


@kopf.on.cleanup()
async def stop_loop(**_: Any) -> None:
    for task in _loop_task:
        task.cancel()
    _loop_task.clear()


@kopf.index(GROUP, VERSION, PLURAL)
async def unfinished_runs(
    namespace: str, name: str, status: Mapping[str, Any], meta: Mapping[str, Any], **_: Any
) -> dict[tuple[str, str], bool]:
    if meta.get("deletionTimestamp") or not planner.unfinished(status):
        return {}
    return {(namespace, name): True}


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
