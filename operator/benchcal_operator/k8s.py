"""Thin async adapter over the kubernetes client: the only module that talks to the API server.

Calls run the (blocking) official client in this module's own thread pool (``API_THREADS``
workers, not asyncio's small default pool, which kopf's sync callbacks share), with an HTTP
connection pool as large, so concurrent reconciles of many runs do not queue behind a handful of
threads. API failures are raised as
``ApiError`` carrying the HTTP status; handlers.py translates them into kopf's vocabulary.
Creating a Job that already exists (409) is success: names are deterministic.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchcal.api import GROUP, PLURAL, VERSION
from benchcal.naming import RUN_LABEL


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NameConflict(ApiError):
    """A Job with our deterministic name exists but belongs to another run."""


API_THREADS = 16


@functools.lru_cache(maxsize=1)
def _clients() -> tuple[Any, Any, Any]:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()  # KUBECONFIG or ~/.kube/config
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = API_THREADS  # one keep-alive connection per worker
    api = client.ApiClient(configuration)
    return client.BatchV1Api(api), client.CoreV1Api(api), client.CustomObjectsApi(api)


@functools.lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="benchcal-k8s")


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return await asyncio.get_running_loop().run_in_executor(
            _executor(), functools.partial(fn, *args, **kwargs)
        )
    except ApiException as exc:
        raise ApiError(int(exc.status or 0), str(exc.reason or exc.body or exc)) from None


async def get_run(namespace: str, name: str) -> dict[str, Any] | None:
    _, _, custom = _clients()
    try:
        return await _call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


async def create_job(manifest: dict[str, Any]) -> bool:
    """True if created, False if a Job of that name already existed."""
    batch, _, _ = _clients()
    meta = manifest["metadata"]
    try:
        await _call(batch.create_namespaced_job, meta["namespace"], manifest)
    except ApiError as exc:
        if exc.status != 409:
            raise
        existing = await _call(batch.read_namespaced_job, meta["name"], meta["namespace"])
        owner = (existing.metadata.labels or {}).get(RUN_LABEL)
        if owner != meta["labels"][RUN_LABEL]:
            raise NameConflict(
                409, f"Job {meta['name']} already exists and belongs to {owner or 'no CalibrationRun'}"
            ) from exc
        return False
    return True


async def set_job_suspend(namespace: str, name: str, suspend: bool) -> None:
    batch, _, _ = _clients()
    await _call(batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": suspend}})


async def patch_run_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    _, _, custom = _clients()
    body = {"status": status}
    await _call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, PLURAL, name, body)


async def termination_message(namespace: str, job_name: str) -> str:
    """The newest terminated container's message among the Job's pods ('' if none)."""
    _, core, _ = _clients()
    pods = await _call(core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}")
    return latest_termination_message([p.to_dict() for p in pods.items])


def latest_termination_message(pods: list[dict[str, Any]]) -> str:
    found: list[tuple[str, str]] = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("container_statuses") or []:
            term = ((cs.get("state") or {}).get("terminated")) or {}
            if term.get("message"):
                found.append((str(term.get("finished_at") or ""), term["message"].strip()))
    return max(found)[1] if found else ""
