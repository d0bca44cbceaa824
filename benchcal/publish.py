"""Results transport through the Kubernetes API (contracts 5 and 6).

- ``publish_summary``: an evaluator pod writes its CheckpointSummary into a ConfigMap the
  operator created for it (labelled with its run, owned by the CalibrationRun so it goes away
  with it); it patches, never creates, so its Role can name every object it may touch.
- ``collect_summaries``: the reducer reads the run (its checkpoints and shards) and gets each of
  its summary ConfigMaps by name, only those owned by this run's UID (``$BENCHCAL_RUN_UID``): a
  deleted namesake's are never classified.
- ``write_run_status``: the reducer writes the bounded classification
  (``benchcal.classification.StatusClassification``), ``resultsRef`` and, given a history entry,
  ``history`` + ``lastChange`` (``benchcal.history``: read, extended, written back under the
  read's resourceVersion, so two reducers never lose each other's entry) into the run's status
  (the operator owns every other status field).

The kubernetes client is imported lazily: the core stays importable without it. Pods use their
in-cluster ServiceAccount; elsewhere KUBECONFIG (or ~/.kube/config) is used. The manifests and
the status patch are pure functions, tested without a cluster.
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

from benchcal import history, naming
from benchcal.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from benchcal.classification import StatusClassification
from benchcal.errors import BadInput
from benchcal.history import HistoryEntry
from benchcal.results import CheckpointSummary

CONFIGMAP_KEY = "summary.json"
CONFIGMAP_MAX_BYTES = 1_000_000  # the API server's limit is 1 MiB for the whole object
STATUS_CONFLICT_RETRIES = 5  # the operator patches the status too: re-read and retry on 409


def split_target(target: str, what: str) -> tuple[str, str]:
    namespace, _, name = target.partition("/")
    if not namespace or not name or "/" in name:
        raise BadInput(f"{what}: expected NAMESPACE/NAME, got {target!r}")
    return namespace, name


def summary_text(summary: CheckpointSummary) -> str:
    """The summary as the ConfigMap's ``summary.json`` (refused when a ConfigMap cannot hold it)."""
    text = json.dumps(summary.to_dict(), sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > CONFIGMAP_MAX_BYTES:
        raise BadInput(
            f"summary of checkpoint {summary.checkpoint}: {len(text.encode())} bytes exceeds the ConfigMap limit "
            f"({CONFIGMAP_MAX_BYTES}); evaluate fewer benchmarks per run"
        )
    return text


def summary_configmap(
    summary: CheckpointSummary, namespace: str, name: str, env: dict[str, str]
) -> dict[str, Any]:
    """The ConfigMap manifest for one summary; run labels/owner come from the operator's env."""
    text = summary_text(summary)
    run = env.get(naming.ENV_RUN, "")
    checkpoint = env.get(naming.ENV_CHECKPOINT, "") or summary.checkpoint
    labels = naming.child_labels(run, naming.SUMMARY, checkpoint)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if run and env.get(naming.ENV_RUN_UID):
        metadata["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": run,
                "uid": env[naming.ENV_RUN_UID],
                "controller": False,
                "blockOwnerDeletion": False,
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {CONFIGMAP_KEY: text}}


def merge_summaries(summaries: list[CheckpointSummary]) -> list[CheckpointSummary]:
    """One summary per checkpoint (shards of an Indexed Job are concatenated), ordered by FLOPs."""
    merged: dict[str, CheckpointSummary] = {}
    for s in summaries:
        if s.checkpoint not in merged:
            merged[s.checkpoint] = CheckpointSummary(
                **{**s.__dict__, "results": list(s.results), "failures": list(s.failures)}
            )
            continue
        into = merged[s.checkpoint]
        seen = {(r.benchmark, r.num_fewshot) for r in into.results}
        into.results += [r for r in s.results if (r.benchmark, r.num_fewshot) not in seen]
        into.failures += s.failures
        into.started_at = min(filter(None, (into.started_at, s.started_at)), default="")
        into.finished_at = max(into.finished_at, s.finished_at)
        into.pairs_resumed += s.pairs_resumed
        into.pairs_computed += s.pairs_computed
        into.requests_scored += s.requests_scored
    return sorted(merged.values(), key=lambda s: (s.flops is None, s.flops or 0.0, s.checkpoint))


def run_status_patch(
    classification: StatusClassification,
    results_ref: dict[str, Any] | None,
    run_history: tuple[HistoryEntry, ...] | None = None,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """The reducer's merge patch: ``status.classification``, when known ``status.resultsRef``, and
    with a history ``status.history`` (whole: a merge patch replaces lists) and ``status.lastChange``.
    ``resource_version``: the patch applies only to that version of the run (else 409)."""
    status: dict[str, Any] = {"classification": classification.to_status()}
    if results_ref:
        ref = {"uri": str(results_ref.get("uri", ""))}
        if results_ref.get("sha256"):
            ref["sha256"] = str(results_ref["sha256"])
        if results_ref.get("size") is not None:
            ref["size"] = int(results_ref["size"])
        status["resultsRef"] = ref
    if run_history is not None:
        status["history"] = history.to_status(run_history)
        status["lastChange"] = history.last_change(run_history)
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return body


# ---- I/O (kubernetes client, lazily) -------------------------------------------------------------


def _api() -> Any:
    try:
        from kubernetes import client, config
    except ImportError:
        raise BadInput("the kubernetes client is not installed: pip install 'benchcal[operator]'") from None
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError, TypeError) as exc:
            raise BadInput(
                f"no Kubernetes configuration (not in a pod, and KUBECONFIG unusable): {exc}"
            ) from None
    return client


def server_message(exc: Any) -> str:
    """The API server's own words from a failed call (its Status message), else the HTTP reason."""
    try:
        body = json.loads(getattr(exc, "body", None) or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(getattr(exc, "reason", "") or exc)


def _raise(exc: Any, action: str) -> NoReturn:
    """403/404/422 are bad input (exit 2: the Job fails at once, naming the server's answer)."""
    status = int(getattr(exc, "status", 0) or 0)
    if status in (401, 403):
        raise BadInput(
            f"{action}: forbidden ({status}): {server_message(exc)}; the pod's ServiceAccount needs this verb "
            "(docs/operations.md, RBAC)"
        )
    if status == 404:
        raise BadInput(f"{action}: not found: {server_message(exc)}")
    if status == 422:
        raise BadInput(f"{action}: invalid: {server_message(exc)}")
    raise exc


def publish_summary(summary: CheckpointSummary, target: str) -> None:
    """Write ``summary`` as JSON into ConfigMap NAMESPACE/NAME.

    The operator creates a run's summary ConfigMaps before its Jobs (its pods may only get and
    patch those names: RBAC cannot limit ``create`` to names), so this patches first; only a
    ConfigMap nobody created yet (a pod not started by the operator) is created.
    """
    namespace, name = split_target(target, "--publish-configmap")
    manifest = summary_configmap(summary, namespace, name, dict(os.environ))
    client = _api()
    core = client.CoreV1Api()
    try:
        core.patch_namespaced_config_map(name, namespace, {"data": manifest["data"]})
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            _raise(exc, f"patch ConfigMap {target}")
        try:
            core.create_namespaced_config_map(namespace, manifest)
        except client.exceptions.ApiException as exc2:
            _raise(exc2, f"create ConfigMap {target}")


def _owned_by(cm: Any, uid: str) -> bool:
    return any(ref.uid == uid for ref in (cm.metadata.owner_references or []))


def summary_names_of(run_body: dict[str, Any]) -> list[str]:
    """The summary ConfigMaps a run's evaluators publish, from its spec's checkpoints and shards."""
    spec = run_body.get("spec") or {}
    shards = int((spec.get("evaluator") or {}).get("shards") or 1)
    checkpoints = [c["name"] for c in spec.get("checkpoints") or []]
    return naming.summary_configmap_names(run_body["metadata"]["name"], checkpoints, shards)


def collect_summaries(target: str, run_uid: str | None = None) -> list[CheckpointSummary]:
    """Every published summary of run NAMESPACE/RUN, merged per checkpoint, ordered by FLOPs.

    The ConfigMaps are read by name (``naming.summary_configmap_names`` of the run's spec: a pod's
    Role names them, it cannot list), and each must be owned by the run's UID (``run_uid``,
    default ``$BENCHCAL_RUN_UID``): a run deleted and re-created under the same name leaves
    summaries the garbage collector may not have removed yet, and those belong to the old run.
    """
    namespace, run = split_target(target, "--from-configmaps")
    uid = os.environ.get(naming.ENV_RUN_UID, "") if run_uid is None else run_uid
    client = _api()
    try:
        body = client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, run)
    except client.exceptions.ApiException as exc:
        _raise(exc, f"get CalibrationRun {target}")
    core = client.CoreV1Api()
    summaries = []
    for name in summary_names_of(body):
        where = f"ConfigMap {namespace}/{name}"
        try:
            cm = core.read_namespaced_config_map(name, namespace)
        except client.exceptions.ApiException as exc:
            _raise(exc, f"--from-configmaps {target}: read {where}")
        if uid and not _owned_by(cm, uid):
            raise BadInput(f"{where}: owned by another CalibrationRun than uid {uid} (a deleted namesake's)")
        text = (cm.data or {}).get(CONFIGMAP_KEY)
        if text is None:
            raise BadInput(f"{where}: no {CONFIGMAP_KEY} key (its evaluator never published)")
        try:
            summaries.append(CheckpointSummary.from_dict(json.loads(text), where))
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: invalid JSON: {exc.msg}") from None
    if not summaries:
        raise BadInput(f"--from-configmaps {target}: the run has no checkpoints")
    return merge_summaries(summaries)


def _read_run(client: Any, target: str, what: str) -> dict[str, Any]:
    namespace, run = split_target(target, what)
    try:
        # the run itself (its Role grants get on it by name), which carries the status
        obj = client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, run)
    except client.exceptions.ApiException as exc:
        _raise(exc, f"read status of CalibrationRun {target}")
    return obj if isinstance(obj, dict) else {}


def _history_of(obj: dict[str, Any], target: str) -> tuple[HistoryEntry, ...]:
    return history.from_status(
        (obj.get("status") or {}).get("history"), f"CalibrationRun {target}: status.history"
    )


def read_run_history(target: str) -> tuple[HistoryEntry, ...]:
    """status.history of run NAMESPACE/RUN, oldest first (empty before the first reduction)."""
    return _history_of(_read_run(_api(), target, "--write-status"), target)


def write_run_status(
    target: str,
    classification: StatusClassification,
    results_ref: dict[str, Any] | None,
    entry: HistoryEntry | None = None,
) -> tuple[HistoryEntry, ...] | None:
    """Merge-patch status.classification (bounded) and status.resultsRef of run NAMESPACE/RUN;
    with ``entry``, also status.history extended by it (returned) and status.lastChange, in the
    same patch, conditional on the resourceVersion the history was read at."""
    namespace, run = split_target(target, "--write-status")
    client = _api()
    custom = client.CustomObjectsApi()

    def patch(body: dict[str, Any]) -> None:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, run, body)

    if entry is None:
        try:
            patch(run_status_patch(classification, results_ref))
        except client.exceptions.ApiException as exc:
            _raise(exc, f"patch status of CalibrationRun {target}")
        return None
    for _ in range(STATUS_CONFLICT_RETRIES):
        obj = _read_run(client, target, "--write-status")
        extended = history.extend(_history_of(obj, target), entry)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        try:
            patch(run_status_patch(classification, results_ref, extended, version))
            return extended
        except client.exceptions.ApiException as exc:
            if exc.status != 409:
                _raise(exc, f"patch status of CalibrationRun {target}")
    raise RuntimeError(
        f"patch status of CalibrationRun {target}: it changed under every one of {STATUS_CONFLICT_RETRIES} "
        "attempts (409 Conflict); the reducer Job's retry will try again"
    )
