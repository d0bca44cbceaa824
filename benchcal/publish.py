"""Results transport through the Kubernetes API (contracts 5 and 6).

- ``publish_summary``: an evaluator writes its CheckpointSummary into a ConfigMap. In the
  operator's pods the evaluator has no credentials: with ``$BENCHCAL_OUTBOX`` set it hands the
  summary to the publisher sidecar (``benchcal.outbox``), which fills in the ConfigMap the
  operator created for it (``patch_summary``). Elsewhere it creates the ConfigMap itself
  (labelled with its run, owned by the CalibrationRun so it goes away with it).
- ``collect_summaries``: the reducer reads every summary of a run back, by name (the run's
  checkpoints, each ConfigMap's shard count) and only if the ConfigMap belongs to this run (UID).
- ``write_run_status``: the reducer writes the bounded classification
  (``benchcal.classification.StatusClassification``) and ``resultsRef`` into the run's status
  (the operator owns every other status field).

The kubernetes client is imported lazily: the core stays importable without it. Pods use their
in-cluster ServiceAccount; elsewhere KUBECONFIG (or ~/.kube/config) is used. The manifests and
the status patch are pure functions, tested without a cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchcal import naming, outbox
from benchcal.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from benchcal.classification import StatusClassification
from benchcal.errors import BadInput
from benchcal.results import CheckpointSummary

CONFIGMAP_KEY = "summary.json"
CONFIGMAP_MAX_BYTES = 1_000_000  # the API server's limit is 1 MiB for the whole object


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
    return sorted(merged.values(), key=lambda s: (s.flops is None, s.flops or 0.0, s.checkpoint))


def run_status_patch(
    classification: StatusClassification, results_ref: dict[str, Any] | None
) -> dict[str, Any]:
    """The reducer's merge patch: ``status.classification`` and, when known, ``status.resultsRef``."""
    status: dict[str, Any] = {"classification": classification.to_status()}
    if results_ref:
        ref = {"uri": str(results_ref.get("uri", ""))}
        if results_ref.get("sha256"):
            ref["sha256"] = str(results_ref["sha256"])
        if results_ref.get("size") is not None:
            ref["size"] = int(results_ref["size"])
        status["resultsRef"] = ref
    return {"status": status}


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


def _raise(exc: Any, action: str) -> None:
    """403/404/422 are bad input (exit 2: the Job fails at once, naming the server's answer)."""
    status = int(getattr(exc, "status", 0) or 0)
    if status in (401, 403):
        raise BadInput(
            f"{action}: forbidden ({status}): {server_message(exc)}; see docs/operations.md, Security"
        )
    if status == 404:
        raise BadInput(f"{action}: not found: {server_message(exc)}")
    if status == 422:
        raise BadInput(f"{action}: invalid: {server_message(exc)}")
    raise exc


def publish_summary(summary: CheckpointSummary, target: str) -> None:
    """Publish ``summary`` to ConfigMap NAMESPACE/NAME: through the outbox in the operator's pods
    (``$BENCHCAL_OUTBOX``), else by creating or replacing the ConfigMap with this process's credentials."""
    namespace, name = split_target(target, "--publish-configmap")
    box = os.environ.get(naming.ENV_OUTBOX, "")
    if box:
        outbox.hand_over(summary_text(summary), Path(box), name)
        return
    manifest = summary_configmap(summary, namespace, name, dict(os.environ))
    client = _api()
    core = client.CoreV1Api()
    try:
        core.create_namespaced_config_map(namespace, manifest)
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            _raise(exc, f"create ConfigMap {target}")
        try:
            core.replace_namespaced_config_map(name, namespace, manifest)
        except client.exceptions.ApiException as exc2:
            _raise(exc2, f"replace ConfigMap {target}")


def patch_summary(namespace: str, name: str, text: str) -> None:
    """The publisher's one call: fill in the ConfigMap the operator created (RBAC: patch, by name)."""
    client = _api()
    try:
        client.CoreV1Api().patch_namespaced_config_map(name, namespace, {"data": {CONFIGMAP_KEY: text}})
    except client.exceptions.ApiException as exc:
        status = int(exc.status or 0)
        permanent = status in (400, 401, 403, 404, 413, 422)
        raise outbox.PublishError(f"HTTP {status}: {server_message(exc)}", permanent) from None


def _configmap(core: Any, client: Any, namespace: str, name: str, checkpoint: str) -> Any:
    try:
        return core.read_namespaced_config_map(name, namespace)
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            raise BadInput(
                f"checkpoint {checkpoint}: no summary ConfigMap {namespace}/{name} (its evaluator Job never started?)"
            ) from None
        _raise(exc, f"read ConfigMap {namespace}/{name}")


def _owned_by(cm: Any, uid: str) -> bool:
    return any(ref.uid == uid for ref in (cm.metadata.owner_references or []))


def _parse(cm: Any, namespace: str, checkpoint: str) -> CheckpointSummary:
    where = f"ConfigMap {namespace}/{cm.metadata.name}"
    text = (cm.data or {}).get(CONFIGMAP_KEY)
    if text is None:
        raise BadInput(
            f"checkpoint {checkpoint}: {where} holds no {CONFIGMAP_KEY}: its evaluator did not publish"
        )
    try:
        return CheckpointSummary.from_dict(json.loads(text), where)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: invalid JSON: {exc.msg}") from None


def collect_summaries(target: str) -> list[CheckpointSummary]:
    """Every checkpoint's summary of run NAMESPACE/RUN, merged per checkpoint, ordered by FLOPs.

    Names come from the run's own spec (its checkpoints; each first ConfigMap's shard count), so
    the reducer needs only ``get`` by name; a ConfigMap owned by another run (a deleted namesake
    whose children the garbage collector has not removed yet) is refused, never classified.
    """
    from benchcal.spec import parse_run

    namespace, run_name = split_target(target, "--from-configmaps")
    client = _api()
    try:
        body = client.CustomObjectsApi().get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, run_name
        )
    except client.exceptions.ApiException as exc:
        _raise(exc, f"read CalibrationRun {target}")
    run = parse_run(body)
    core = client.CoreV1Api()
    summaries = []
    for ckpt in run.checkpoints:
        base = naming.summary_configmap_name(run.name, ckpt.name)
        first = _configmap(core, client, namespace, base, ckpt.name)
        if run.uid and not _owned_by(first, run.uid):
            raise BadInput(
                f"checkpoint {ckpt.name}: ConfigMap {namespace}/{base} belongs to another CalibrationRun "
                f"(not uid {run.uid}); refusing to classify it"
            )
        shards = int(((first.metadata.annotations or {}).get(naming.SHARDS_ANNOTATION)) or 1)
        if shards <= 1:
            summaries.append(_parse(first, namespace, ckpt.name))
            continue
        for name in naming.summary_configmap_names(run.name, ckpt.name, shards):
            summaries.append(
                _parse(_configmap(core, client, namespace, name, ckpt.name), namespace, ckpt.name)
            )
    return merge_summaries(summaries)


def write_run_status(
    target: str, classification: StatusClassification, results_ref: dict[str, Any] | None
) -> None:
    """Merge-patch status.classification (bounded) and status.resultsRef of run NAMESPACE/RUN."""
    namespace, run = split_target(target, "--write-status")
    body = run_status_patch(classification, results_ref)
    client = _api()
    try:
        client.CustomObjectsApi().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, run, body
        )
    except client.exceptions.ApiException as exc:
        _raise(exc, f"patch status of CalibrationRun {target}")
