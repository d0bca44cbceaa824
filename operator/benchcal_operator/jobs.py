"""Pure builders of the child Job manifests (plain dicts; tests and ``benchcal plan`` use them).

Evaluator Job per checkpoint: runs ``benchcal evaluate`` (contract 5) and publishes its
CheckpointSummary to a ConfigMap; reducer Job: ``benchcal reduce --from-configmaps`` and
``--write-status``. Both pods: non-root (uid/gid/fsGroup from the run or the operator, so
root-owned volumes are writable), no privilege escalation, read-only root filesystem (writable
/tmp with a size limit, /dev/shm), offline Hugging Face flags except for hub checkpoints, and a
podFailurePolicy under which exit code 2 (bad input) fails the Job at once while preemption
(DisruptionTarget) does not count as a failure.
"""

from __future__ import annotations

from typing import Any

from benchcal import commands, layout, naming, work
from benchcal.api import API_VERSION, KIND
from benchcal.errors import EXIT_BAD_INPUT
from benchcal.pod import (
    MODEL_MOUNT,
    OUTBOX_MOUNT,
    OUTBOX_SIZE,
    RESULTS_MOUNT,
    SHM_MOUNT,
    TMP_MOUNT,
    TOKEN_MOUNT,
    service_account_token_volume,
)
from benchcal.spec import POD_FIELDS, CalibrationRun, Checkpoint
from benchcal_operator.settings import Settings

OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
REDUCER_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
PUBLISHER_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
TOKEN_VOLUME = "benchcal-api-token"
OUTBOX_VOLUME = "benchcal-outbox"


def owner_reference(run: CalibrationRun) -> dict[str, Any]:
    """Children are garbage-collected with their run; no finalizer needed."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": run.name,
        "uid": run.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_service_account(run: CalibrationRun) -> str:
    """Evaluator and reducer pods run as the run's own ServiceAccount (benchcal_operator.identity),
    or as the one ``spec.evaluator.serviceAccountName`` names."""
    return run.evaluator.service_account_name or naming.pod_identity_name(run.name)


def results_root(run: CalibrationRun) -> str:
    """Where results live as seen from inside the pods (the root of ``benchcal.layout``)."""
    res = run.results
    if res is None:
        return RESULTS_MOUNT
    if res.kind == "uri":
        return res.uri.rstrip("/")
    if res.kind == "pvc":
        return f"{RESULTS_MOUNT}/{res.path}".rstrip("/")
    return res.path.rstrip("/")


def model_argument(ckpt: Checkpoint) -> str:
    m = ckpt.model
    if m.kind == "pvc":
        return f"{MODEL_MOUNT}/{m.path}".rstrip("/")
    if m.kind == "hub":
        return m.hub_id
    if m.kind == "uri":
        return m.uri
    if m.kind == "builtin":
        return f"builtin:{m.builtin}"
    return m.path


def evaluate_command(run: CalibrationRun, ckpt: Checkpoint) -> list[str]:
    """The checkpoint's one ``benchcal evaluate`` argv, as seen from inside the pod: the summary
    goes to the publisher sidecar through the outbox (the evaluator has no credentials)."""
    return commands.evaluate_command(
        run,
        ckpt,
        model=model_argument(ckpt),
        out_dir=layout.checkpoint_dir(results_root(run), ckpt.name),
        outbox=OUTBOX_MOUNT,
    )


def needs_external_egress(run: CalibrationRun, ckpt: Checkpoint) -> bool:
    """Whether the checkpoint's pod must leave the cluster: a hub or object-store model, or
    object-store results (the chart's NetworkPolicy allows HTTPS only to pods labelled so)."""
    return ckpt.model.kind in ("hub", "uri") or (run.results is not None and run.results.kind == "uri")


def publisher_container(target: str, env: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The native sidecar that alone holds the pod's ServiceAccount token and publishes the
    evaluator's summary (``benchcal publish``). It runs the reducer image: benchcal and the
    kubernetes client, no model code; it shares only the outbox with the evaluator (no /tmp:
    nothing the evaluator writes can end up on its import path)."""
    return {
        "name": naming.PUBLISHER,
        "image": settings.reducer_image,
        "restartPolicy": "Always",
        "args": commands.publish_command(outbox=OUTBOX_MOUNT, target=target),
        "env": [*env, {"name": "PYTHONNOUSERSITE", "value": "1"}],
        "volumeMounts": [
            {"name": OUTBOX_VOLUME, "mountPath": OUTBOX_MOUNT},
            {"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT, "readOnly": True},
        ],
        "securityContext": container_security(),
        "resources": PUBLISHER_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def reduce_command(run: CalibrationRun) -> list[str]:
    """The reducer Job's ``benchcal reduce`` argv: summaries from ConfigMaps, classification to status.
    Exactly the spec's checkpoints: a removed one's summary ConfigMap stays, but is not reduced."""
    return commands.reduce_command(
        run, out_dir=layout.report_dir(results_root(run)), checkpoints=[c.name for c in run.checkpoints]
    )


def pod_security_context(run: CalibrationRun, settings: Settings) -> dict[str, Any]:
    """Pod Security "restricted" always; uid/gid/fsGroup from the run, else the operator's default."""
    ids = run.evaluator.pod_security_context
    chosen = dict(settings.job_pod_security_context if ids is None else ids)
    return {"runAsNonRoot": True, **chosen, "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def _base_env(run: CalibrationRun, checkpoint: str, online: bool) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": naming.ENV_RUN, "value": run.name},
        {"name": naming.ENV_RUN_UID, "value": run.uid},
        {"name": naming.ENV_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "HF_HOME", "value": f"{TMP_MOUNT}/hf"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if checkpoint:
        env.append({"name": naming.ENV_CHECKPOINT, "value": checkpoint})
    env += [{"name": key, "value": "0" if online else "1"} for key in OFFLINE_ENV]
    return env


def _results_volume(run: CalibrationRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    res = run.results
    if res is None:
        vols = [{"name": "benchcal-results", "emptyDir": {}}]
    elif res.kind == "pvc":
        vols = [{"name": "benchcal-results", "persistentVolumeClaim": {"claimName": res.claim_name}}]
    else:
        return [], []  # a user-mounted path or an object-store URI
    return vols, [{"name": "benchcal-results", "mountPath": RESULTS_MOUNT}]


def _scratch_volumes(size: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vols = [
        {"name": "benchcal-tmp", "emptyDir": {"sizeLimit": size}},
        {"name": "benchcal-shm", "emptyDir": {"medium": "Memory"}},
    ]
    mounts = [
        {"name": "benchcal-tmp", "mountPath": TMP_MOUNT},
        {"name": "benchcal-shm", "mountPath": SHM_MOUNT},
    ]
    return vols, mounts


def _job_labels(run: CalibrationRun, component: str, checkpoint: str = "") -> dict[str, str]:
    labels = naming.child_labels(run.name, component, checkpoint)
    queue = run.queue_name or run.labels.get(naming.KUEUE_QUEUE_LABEL, "")
    if queue:
        labels[naming.KUEUE_QUEUE_LABEL] = queue
    if naming.KUEUE_PRIORITY_LABEL in run.labels:
        labels[naming.KUEUE_PRIORITY_LABEL] = run.labels[naming.KUEUE_PRIORITY_LABEL]
    return labels


def _pod_failure_policy(container: str) -> dict[str, Any]:
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": container, "operator": "In", "values": [EXIT_BAD_INPUT]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def build_evaluator_job(run: CalibrationRun, ckpt: Checkpoint, settings: Settings) -> dict[str, Any]:
    """The checkpoint's Job for its current pairs (all of them: resume skips the finished ones)."""
    ev = run.evaluator
    pairs = work.run_pairs(run)
    pairs_key = work.pairs_key(pairs)
    name = naming.evaluator_job_name(run.name, ckpt.name, pairs_key)
    shards = ev.shards
    target = f"{run.namespace}/{naming.summary_configmap_name(run.name, ckpt.name)}"
    if shards > 1:
        target += f"-$({naming.ENV_SHARD_INDEX})"  # Kubernetes expands $(VAR) in args
    online = ckpt.model.kind == "hub"
    env = _base_env(run, ckpt.name, online)
    if online and ckpt.model.token_secret:
        ref = {"name": ckpt.model.token_secret.name, "key": ckpt.model.token_secret.key}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    if shards > 1:
        index_path = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        env.append({"name": naming.ENV_SHARD_INDEX, "valueFrom": {"fieldRef": {"fieldPath": index_path}}})
        env.append({"name": naming.ENV_NUM_SHARDS, "value": str(shards)})
    env += [dict(e) for e in ev.pod.get("env", [])]

    vols, mounts = _scratch_volumes(ev.scratch_size)
    rvols, rmounts = _results_volume(run)
    vols, mounts = vols + rvols, mounts + rmounts
    if ckpt.model.kind == "pvc":
        vols.append(
            {
                "name": "benchcal-model",
                "persistentVolumeClaim": {"claimName": ckpt.model.claim_name, "readOnly": True},
            }
        )
        mounts.append({"name": "benchcal-model", "mountPath": MODEL_MOUNT, "readOnly": True})
    vols += [dict(v) for v in ev.pod.get("volumes", [])]
    mounts += [dict(m) for m in ev.pod.get("volumeMounts", [])]

    # the publisher's env: who it publishes for (no user env: it runs only benchcal's code)
    publisher_env = [e for e in env if e["name"].startswith("BENCHCAL_")] + [
        {"name": "PYTHONUNBUFFERED", "value": "1"}
    ]
    vols.append({"name": OUTBOX_VOLUME, "emptyDir": {"sizeLimit": OUTBOX_SIZE}})
    vols.append(service_account_token_volume(TOKEN_VOLUME))
    mounts.append({"name": OUTBOX_VOLUME, "mountPath": OUTBOX_MOUNT})

    container: dict[str, Any] = {
        "name": naming.EVALUATOR,
        "image": ev.image or settings.evaluator_image,
        # args, not command: the image ENTRYPOINT (tini) stays PID 1 and forwards SIGTERM on preemption
        # straight to the one evaluator process (no shell in between)
        "args": evaluate_command(run, ckpt),
        "env": env,
        "volumeMounts": mounts,
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if ev.resources:
        container["resources"] = ev.resources
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": pod_service_account(run),
        # code from checkpoints and code-eval samples runs in the evaluator: it gets no token;
        # the publisher sidecar mounts the projected one
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(run, settings),
        "initContainers": [publisher_container(target, publisher_env, settings)],
        "containers": [container],
        "volumes": vols,
    }
    for key in POD_FIELDS:
        if ev.pod.get(key):
            pod_spec[key] = ev.pod[key]
    pod_labels = naming.child_labels(run.name, naming.EVALUATOR, ckpt.name)
    if needs_external_egress(run, ckpt):
        pod_labels[naming.EXTERNAL_EGRESS_LABEL] = "true"
    job_spec: dict[str, Any] = {
        "backoffLimit": ev.backoff_limit,
        "activeDeadlineSeconds": ev.active_deadline_seconds,
        "podFailurePolicy": _pod_failure_policy(naming.EVALUATOR),
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if shards > 1:
        job_spec.update(completionMode="Indexed", completions=shards, parallelism=shards)
    labels = {**_job_labels(run, naming.EVALUATOR, ckpt.name), naming.PAIRS_KEY_LABEL: pairs_key}
    return _job(run, name, labels, job_spec, {naming.PAIRS_ANNOTATION: work.format_pair_list(pairs)})


def build_reducer_job(run: CalibrationRun, settings: Settings) -> dict[str, Any]:
    vols, mounts = _scratch_volumes(run.evaluator.scratch_size)
    rvols, rmounts = _results_volume(run)
    ev = run.evaluator
    if run.results is not None and run.results.kind == "path":
        # a user-mounted results path: the reducer needs the same volumes as the evaluator
        vols += [dict(v) for v in ev.pod.get("volumes", [])]
        mounts += [dict(m) for m in ev.pod.get("volumeMounts", [])]
    container = {
        "name": naming.REDUCER,
        "image": settings.reducer_image,
        "args": reduce_command(run),
        "env": _base_env(run, "", online=False),
        "volumeMounts": mounts + rmounts,
        "securityContext": container_security(),
        "resources": REDUCER_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": pod_service_account(run),
        "securityContext": pod_security_context(run, settings),
        "containers": [container],
        "volumes": vols + rvols,
    }
    if ev.pod.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = ev.pod["imagePullSecrets"]
    labels = naming.child_labels(run.name, naming.REDUCER)
    job_spec = {
        "backoffLimit": 1,
        "podFailurePolicy": _pod_failure_policy(naming.REDUCER),
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    key = work.reduction_key(run)
    job_labels = {**_job_labels(run, naming.REDUCER), naming.REDUCTION_KEY_LABEL: key}
    annotations = {naming.CHECKPOINTS_ANNOTATION: ",".join(c.name for c in run.checkpoints)}
    return _job(run, naming.reducer_job_name(run.name, key), job_labels, job_spec, annotations)


def _job(
    run: CalibrationRun,
    name: str,
    labels: dict[str, str],
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    # No ttlSecondsAfterFinished: finished Jobs are the evidence behind status and go with the run
    # (ownerReference GC); their pods have exited and hold no resources.
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": run.namespace,
            "labels": labels,
            "annotations": dict(annotations or {}),
            "ownerReferences": [owner_reference(run)],
        },
        "spec": spec,
    }
