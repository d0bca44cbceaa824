"""Thin async adapter over the kubernetes client: the only module that talks to the API server.

Calls run the (blocking) official client in this module's own thread pool (``API_THREADS``
workers, not asyncio's small default pool, which kopf's sync callbacks share), with an HTTP
connection pool as large, so concurrent reconciles of many runs do not queue behind a handful of
threads. API failures are raised as ``ApiError`` carrying the HTTP status and the server's own
``Status`` (reason and message: a 403 may mean RBAC, a terminating namespace or a quota; a 422
names the invalid field); handlers.py translates them into status and kopf's vocabulary.
Creating an object that already exists (409) is success when it is ours (same controller
owner UID): names are deterministic.
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchcal.api import GROUP, PLURAL, VERSION
from benchcal.naming import RUN_LABEL

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSIONS = ("v1beta2", "v1beta1")
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.reason = reason  # the Status' reason: Forbidden, Invalid, AlreadyExists, ...
        self.message = message  # the Status' message, verbatim

    @property
    def rbac(self) -> bool:
        """A 403 that RBAC answered (not a terminating namespace, a quota, an admission plugin)."""
        return self.status == 403 and forbidden_cause(self.message) == "rbac"


class NameConflict(ApiError):
    """An object with our deterministic name exists but belongs to another run."""


class StaleChild(ApiError):
    """An object with our deterministic name belongs to a deleted run of the same name (GC pending)."""


def forbidden_cause(message: str) -> str:
    """What a 403's message says: rbac | terminating | quota | admission (the server's wording)."""
    if "because it is being terminated" in message:
        return "terminating"
    if "exceeded quota" in message or ("quota" in message and "must specify" in message):
        return "quota"
    if ('User "' in message and " cannot " in message) or "attempting to grant RBAC permissions" in message:
        return "rbac"  # the RBAC authorizer, or its escalation check on Roles and RoleBindings
    return "admission"


def _status_of(exc: Any) -> tuple[str, str]:
    """(reason, message) of a failed call from its JSON Status body, else the HTTP reason phrase."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body.get("reason") or ""), str(body["message"])
    return "", str(exc.reason or exc.body or exc)


API_THREADS = 16


@functools.lru_cache(maxsize=1)
def _api_client() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()  # KUBECONFIG or ~/.kube/config
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = API_THREADS  # one keep-alive connection per worker
    return client.ApiClient(configuration)


def _clients() -> tuple[Any, Any, Any]:
    from kubernetes import client

    api = _api_client()
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
        reason, message = _status_of(exc)
        raise ApiError(int(exc.status or 0), message, reason) from None


async def get_run(namespace: str, name: str) -> dict[str, Any] | None:
    _, _, custom = _clients()
    try:
        return await _call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _owner_uid(metadata: dict[str, Any]) -> str:
    return next((r.get("uid", "") for r in metadata.get("ownerReferences") or [] if r.get("controller")), "")


def _check_owner(kind: str, manifest: dict[str, Any], existing: Any, conflict: ApiError) -> None:
    """A 409: ours (same controller UID) is fine; a deleted namesake's is stale; else a conflict."""
    meta = manifest["metadata"]
    have_meta = _api_client().sanitize_for_serialization(existing).get("metadata") or {}
    want = meta["ownerReferences"][0]["uid"]
    if not want or _owner_uid(have_meta) == want:
        return
    owner = (have_meta.get("labels") or {}).get(RUN_LABEL)
    if owner == meta["labels"][RUN_LABEL]:
        raise StaleChild(
            409, f"{kind} {meta['name']} belongs to a deleted CalibrationRun of the same name"
        ) from conflict
    raise NameConflict(
        409, f"{kind} {meta['name']} already exists and belongs to {owner or 'no CalibrationRun'}"
    ) from conflict


async def create_job(manifest: dict[str, Any]) -> bool:
    """True if created, False if our Job of that name already existed."""
    batch, _, _ = _clients()
    meta = manifest["metadata"]
    try:
        await _call(batch.create_namespaced_job, meta["namespace"], manifest)
    except ApiError as exc:
        if exc.status != 409:
            raise
        existing = await _call(batch.read_namespaced_job, meta["name"], meta["namespace"])
        _check_owner("Job", manifest, existing, exc)
        return False
    return True


def _identity_calls(kind: str) -> tuple[Any, Any, Any]:
    """(create, read, replace) of the client for a run's ServiceAccount, Role, RoleBinding, ConfigMap."""
    from kubernetes import client

    api = _api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    return {
        "ServiceAccount": (
            core.create_namespaced_service_account,
            core.read_namespaced_service_account,
            None,
        ),
        "ConfigMap": (core.create_namespaced_config_map, core.read_namespaced_config_map, None),
        "Role": (rbac.create_namespaced_role, rbac.read_namespaced_role, rbac.replace_namespaced_role),
        "RoleBinding": (rbac.create_namespaced_role_binding, rbac.read_namespaced_role_binding, None),
    }[kind]


async def create_owned(manifest: dict[str, Any]) -> bool:
    """Create one of a run's own objects; True if created, False if ours already existed.

    409 is done when the object is ours (same controller UID); a Role of ours whose rules differ
    (``spec.evaluator.shards`` changed: other summary names) gets the names added; names are never
    taken away, so pods of Jobs started under the old count can still publish.
    """
    meta = manifest["metadata"]
    create, read, replace = _identity_calls(manifest["kind"])
    try:
        await _call(create, meta["namespace"], manifest)
    except ApiError as exc:
        if exc.status != 409:
            raise
        existing = await _call(read, meta["name"], meta["namespace"])
        _check_owner(manifest["kind"], manifest, existing, exc)
        have = _api_client().sanitize_for_serialization(existing)
        rules = union_rules(have.get("rules") or [], manifest.get("rules") or [])
        if replace is not None and rules != (have.get("rules") or []):
            version = have["metadata"]["resourceVersion"]
            body = {**manifest, "metadata": {**meta, "resourceVersion": version}, "rules": rules}
            await _call(replace, meta["name"], meta["namespace"], body)
        return False
    return True


def union_rules(have: list[dict[str, Any]], want: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``want``, each rule's resourceNames extended by those ``have`` grants for the same verbs,
    groups and resources (order kept: existing names first)."""

    def key(rule: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(tuple(rule.get(k) or ()) for k in ("apiGroups", "resources", "verbs"))

    old = {key(r): list(r.get("resourceNames") or []) for r in have}
    out = []
    for rule in want:
        names = old.get(key(rule), [])
        merged = names + [n for n in rule.get("resourceNames") or [] if n not in names]
        out.append({**rule, "resourceNames": merged} if rule.get("resourceNames") else dict(rule))
    return out


async def set_job_suspend(namespace: str, name: str, suspend: bool, annotation: str, value: str) -> None:
    """Suspend (marking the Job as suspended by us) or resume (dropping the mark)."""
    batch, _, _ = _clients()
    body = {
        "metadata": {"annotations": {annotation: value if suspend else None}},
        "spec": {"suspend": suspend},
    }
    await _call(batch.patch_namespaced_job, name, namespace, body)


async def patch_run_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    _, _, custom = _clients()
    body = {"status": status}
    await _call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, PLURAL, name, body)


async def job_pods(namespace: str, job_name: str) -> list[dict[str, Any]]:
    """The Job's pods as plain API dicts (camelCase keys)."""
    _, core, _ = _clients()
    pods = await _call(core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}")
    return [_api_client().sanitize_for_serialization(p) for p in pods.items]


async def termination_message(namespace: str, job_name: str) -> str:
    """The newest terminated container's message among the Job's pods ('' if none)."""
    return latest_termination_message(await job_pods(namespace, job_name))


async def job_events(namespace: str, job_uid: str) -> list[dict[str, Any]]:
    """Events about one Job (by UID: never a deleted namesake's)."""
    _, core, _ = _clients()
    events = await _call(
        core.list_namespaced_event, namespace, field_selector=f"involvedObject.uid={job_uid}"
    )
    return [_api_client().sanitize_for_serialization(e) for e in events.items]


_kueue_version: list[str | None] = []  # [] unknown; [None] Kueue not installed; [v] its version


async def job_workloads(namespace: str, job_uid: str) -> list[dict[str, Any]] | None:
    """Kueue Workloads of one Job; None when Kueue is not installed (or not readable)."""
    _, _, custom = _clients()
    versions = _kueue_version or list(KUEUE_VERSIONS)
    for version in versions:
        if version is None:
            return None
        try:
            found = await _call(
                custom.list_namespaced_custom_object,
                KUEUE_GROUP,
                version,
                namespace,
                "workloads",
                label_selector=f"{KUEUE_JOB_UID_LABEL}={job_uid}",
            )
        except ApiError as exc:
            if exc.status == 404:
                continue
            if exc.status == 403:
                return None  # the chart's kueue.enabled=false: no rights, no Workload reports
            raise
        _kueue_version[:] = [version]
        return list(found.get("items") or [])
    _kueue_version[:] = [None]
    return None


def latest_termination_message(pods: list[dict[str, Any]]) -> str:
    found: list[tuple[str, str]] = []
    for pod in pods:
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or status.get("container_statuses") or []:
            term = ((cs.get("state") or {}).get("terminated")) or {}
            if term.get("message"):
                stamp = term.get("finishedAt") or term.get("finished_at") or ""
                found.append((str(stamp), term["message"].strip()))
    return max(found)[1] if found else ""
