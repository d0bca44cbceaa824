"""Names, labels and selectors of everything a CalibrationRun creates: the one place they are spelled.

Used by the operator (child Jobs), by ``benchcal.publish`` (summary ConfigMaps) and by the pods
(the environment variables the operator sets and the evaluator reads).

Names are a pure function of (run, checkpoint), so an operator killed between "create" and
"record" finds its Job again (or gets 409 AlreadyExists) instead of creating a duplicate.
Job names must stay <= 63 characters (they become the pods' ``job-name`` label value).
"""

from __future__ import annotations

import hashlib

DNS_LABEL_MAX = 63

# ---- label keys ----------------------------------------------------------------------------------
RUN_LABEL = "benchcal.dev/run"
CHECKPOINT_LABEL = "benchcal.dev/checkpoint"
COMPONENT_LABEL = "benchcal.dev/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "benchcal"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"

# ---- values of COMPONENT_LABEL (and the container names) -----------------------------------------
EVALUATOR = "evaluator"
REDUCER = "reducer"
SUMMARY = "summary"

# ---- environment of evaluator and reducer pods (set by the operator, read inside the pod) ---------
ENV_RUN = "BENCHCAL_RUN"
ENV_RUN_UID = "BENCHCAL_RUN_UID"
ENV_NAMESPACE = "BENCHCAL_NAMESPACE"
ENV_CHECKPOINT = "BENCHCAL_CHECKPOINT"
ENV_SHARD_INDEX = "BENCHCAL_SHARD_INDEX"
ENV_NUM_SHARDS = "BENCHCAL_NUM_SHARDS"


def bounded_name(*parts: str, limit: int = DNS_LABEL_MAX) -> str:
    """Join parts with '-'; if too long, cut and append a hash of the full name (stays unique)."""
    full = "-".join(p for p in parts if p)
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def evaluator_job_name(run: str, checkpoint: str) -> str:
    return bounded_name(run, "eval", checkpoint)


def reducer_job_name(run: str) -> str:
    return bounded_name(run, "reduce")


def summary_configmap_name(run: str, checkpoint: str) -> str:
    """The ConfigMap the evaluator publishes its CheckpointSummary to (one per shard when sharded)."""
    return bounded_name(run, "summary", checkpoint)


def child_labels(run: str, component: str, checkpoint: str = "") -> dict[str, str]:
    """Labels on every child (Jobs, their pods, summary ConfigMaps): how the operator, the reducer
    and `kubectl -l` find them. Without a run (a pod not started by the operator) only the
    managed-by and component labels are set."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if run:
        labels[RUN_LABEL] = run
    labels[COMPONENT_LABEL] = component
    if run and checkpoint:
        labels[CHECKPOINT_LABEL] = checkpoint
    return labels


def selector(run: str, component: str = "") -> str:
    """A label selector string for the children of one run (of one component, if given)."""
    sel = f"{MANAGED_BY_LABEL}={MANAGED_BY},{RUN_LABEL}={run}"
    return f"{sel},{COMPONENT_LABEL}={component}" if component else sel
