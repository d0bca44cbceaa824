"""Names, labels and selectors of everything a CalibrationRun creates: the one place they are spelled.

Used by the operator (child Jobs), by ``benchcal.publish`` (summary ConfigMaps) and by the pods
(the environment variables the operator sets and the evaluator reads).

Names are a pure function of (run, checkpoint), so an operator killed between "create" and
"record" finds its Job again (or gets 409 AlreadyExists) instead of creating a duplicate.
Job names must stay <= 63 characters (they become the pods' ``job-name`` label value), and an
Indexed Job's name must leave room for ``-<completions-1>``: its pods' hostnames are
``<job>-<index>``, which batch/v1 validation requires to be DNS labels too. Evaluator Job names
are therefore budgeted for the largest index ``spec.evaluator.shards`` allows, whatever the run's
own shard count (so editing ``shards`` never renames a checkpoint's Job).
"""

from __future__ import annotations

import hashlib

DNS_LABEL_MAX = 63
MAX_SHARDS = 16  # spec.evaluator.shards' maximum in the CRD (a test compares them)
INDEX_SUFFIX_MAX = len(f"-{MAX_SHARDS - 1}")  # "-15": the longest Indexed pod hostname suffix

# ---- label keys ----------------------------------------------------------------------------------
RUN_LABEL = "benchcal.dev/run"
CHECKPOINT_LABEL = "benchcal.dev/checkpoint"
COMPONENT_LABEL = "benchcal.dev/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "benchcal"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
# on evaluator pods that must reach outside the cluster (hub or object-store model, object-store
# results): the chart's second NetworkPolicy allows them HTTPS egress
EXTERNAL_EGRESS_LABEL = "benchcal.dev/external-egress"

# ---- annotation keys -------------------------------------------------------------------------------
# on a Job the operator suspended itself (spec.suspend of the run): the only Jobs it ever resumes
SUSPENDED_BY_ANNOTATION = "benchcal.dev/suspended-by"
SUSPENDED_BY_OPERATOR = "benchcal-operator"

# ---- values of COMPONENT_LABEL (and the container names) -----------------------------------------
EVALUATOR = "evaluator"
PUBLISHER = "publisher"  # the evaluator pod's sidecar (a container name, not a component)
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
    """Room for the Indexed pod suffix is always kept (``INDEX_SUFFIX_MAX``)."""
    return bounded_name(run, "eval", checkpoint, limit=DNS_LABEL_MAX - INDEX_SUFFIX_MAX)


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
