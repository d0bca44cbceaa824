"""Names, labels and selectors of everything a CalibrationRun creates: the one place they are spelled.

Used by the operator (child Jobs), by ``benchcal.publish`` (summary ConfigMaps) and by the pods
(the environment variables the operator sets and the evaluator reads).

Names are a pure function of (run, checkpoint, the work's key: ``benchcal.work``), so an operator killed between "create" and
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
# an evaluator Job's benchcal.work.pairs_key; a reducer Job's benchcal.work.reduction_key
PAIRS_KEY_LABEL = "benchcal.dev/pairs-key"
REDUCTION_KEY_LABEL = "benchcal.dev/reduction-key"
# on evaluator pods that must reach outside the cluster (hub or object-store model, object-store
# results): the chart's second NetworkPolicy allows them HTTPS egress
EXTERNAL_EGRESS_LABEL = "benchcal.dev/external-egress"

# ---- annotation keys -------------------------------------------------------------------------------
# on a Job the operator suspended itself (spec.suspend of the run): the only Jobs it ever resumes
SUSPENDED_BY_ANNOTATION = "benchcal.dev/suspended-by"
SUSPENDED_BY_OPERATOR = "benchcal-operator"
# on an evaluator Job: the (benchmark, shots) pairs it evaluates, as `benchcal evaluate --tasks`
PAIRS_ANNOTATION = "benchcal.dev/pairs"
# on a reducer Job: the checkpoints it reduces, comma-separated
CHECKPOINTS_ANNOTATION = "benchcal.dev/checkpoints"

# ---- values of COMPONENT_LABEL (and the container names) -----------------------------------------
EVALUATOR = "evaluator"
PUBLISHER = "publisher"  # the evaluator pod's sidecar (a container name, not a component)
REDUCER = "reducer"
SUMMARY = "summary"
IDENTITY = "identity"  # a run's own ServiceAccount, Role and RoleBinding (pod_identity_name)

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


def evaluator_job_name(run: str, checkpoint: str, pairs_key: str) -> str:
    """One per (checkpoint, set of pairs): a run that grows gets a new Job, never a renamed one.
    Room for the Indexed pod suffix is always kept (``INDEX_SUFFIX_MAX``)."""
    return bounded_name(run, "eval", checkpoint, pairs_key, limit=DNS_LABEL_MAX - INDEX_SUFFIX_MAX)


def reducer_job_name(run: str, reduction_key: str) -> str:
    """One per reduction input (``benchcal.work.reduction_key``)."""
    return bounded_name(run, "reduce", reduction_key)


def summary_configmap_name(run: str, checkpoint: str) -> str:
    """The ConfigMap the evaluator publishes its CheckpointSummary to (one per shard when sharded)."""
    return bounded_name(run, "summary", checkpoint)


def summary_configmap_names(run: str, checkpoints: list[str], shards: int) -> list[str]:
    """Every summary ConfigMap a run's evaluators publish: one per checkpoint, one per shard when
    sharded (``<summary>-<index>``, the index the Indexed Job gives each pod). The operator creates
    exactly these (its pods may only get/patch/update them, by name) and the reducer reads them."""
    names = []
    for ckpt in checkpoints:
        base = summary_configmap_name(run, ckpt)
        names += [base] if shards <= 1 else [f"{base}-{i}" for i in range(shards)]
    return names


def pod_identity_name(run: str) -> str:
    """The run's own ServiceAccount, Role and RoleBinding (one name for all three): its pods' identity,
    allowed to touch only this run's summary ConfigMaps and status."""
    return bounded_name(run, "benchcal")


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
