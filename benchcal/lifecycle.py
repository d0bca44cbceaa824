"""The lifecycle vocabulary of a CalibrationRun: phases, condition types and condition reasons.

The operator derives them (``benchcal_operator.status``); the CRD's enums, printer columns and the
Argo CD health check read them; tests compare these tuples with the CRD's enums. Plain strings,
so they serialise unchanged into JSON, YAML and Kubernetes objects.
"""

from __future__ import annotations

# ---- phases: status.phase (the run) and status.checkpoints[].phase / status.reducer.phase (Jobs) --
PENDING = "Pending"  # no Job yet
QUEUED = "Queued"  # a Job exists but is suspended (e.g. by Kueue); Job phase only
RUNNING = "Running"
REDUCING = "Reducing"  # every checkpoint evaluated, the reducer classifies; run phase only
SUSPENDED = "Suspended"  # spec.suspend; run phase only
SUCCEEDED = "Succeeded"
FAILED = "Failed"
INVALID = "Invalid"  # the spec failed validation or operator policy; run phase only

RUN_PHASES = (PENDING, RUNNING, REDUCING, SUSPENDED, SUCCEEDED, FAILED, INVALID)
JOB_PHASES = (PENDING, QUEUED, RUNNING, SUCCEEDED, FAILED)
ACTIVE = (QUEUED, RUNNING)  # Job phases that hold (or wait for) resources
FINISHED = (SUCCEEDED, FAILED)  # Job phases that never change again
TERMINAL = (SUCCEEDED, FAILED, INVALID)  # run phases after which the operator stops re-syncing

# ---- condition types (status.conditions[].type) ----------------------------------------------------
CONDITION_ACCEPTED = "Accepted"
CONDITION_RUNNING = "Running"
CONDITION_SUCCEEDED = "Succeeded"
CONDITION_FAILED = "Failed"
CONDITION_READY = "Ready"  # kstatus: what Argo CD / Flux health reads
CONDITION_STALLED = "Stalled"  # kstatus: failed for good
CONDITION_RECONCILING = "Reconciling"  # kstatus: True while the operator works toward the spec
CONDITION_TYPES = (
    CONDITION_ACCEPTED,
    CONDITION_RUNNING,
    CONDITION_SUCCEEDED,
    CONDITION_FAILED,
    CONDITION_READY,
    CONDITION_STALLED,
    CONDITION_RECONCILING,
)

# ---- condition reasons (status.conditions[].reason) ------------------------------------------------
REASON_VALID = "Valid"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_NOT_ALLOWED = "NotAllowed"
REASON_PENDING = "Pending"
REASON_QUEUED = "Queued"
REASON_EVALUATING = "Evaluating"
REASON_FAILING = "Failing"  # a checkpoint failed, others still run
REASON_REDUCING = "Reducing"
REASON_SUSPENDED = "Suspended"
REASON_CLASSIFIED = "Classified"
REASON_CHECKPOINTS_FAILED = "CheckpointsFailed"
REASON_REDUCER_FAILED = "ReducerFailed"
REASON_NO_FAILURE = "NoFailure"
REASON_NOT_STALLED = "NotStalled"
REASON_WAITING = "Waiting"  # a checkpoint cannot make progress (reasons per checkpoint: diagnose.py)
REASON_PROGRESSING = "Progressing"  # Ready=False: a new generation's work runs (an earlier result shows)
REASON_JOB_REJECTED = "JobRejected"  # the API server refused a Job built from this spec (a 422)
