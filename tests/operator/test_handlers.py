"""handlers.reconcile called directly with a fake API and a fake kopf index (no cluster)."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from benchcal_operator import handlers, k8s
from benchcal_operator.observe import observe_job
from benchcal_operator.settings import Settings

from .conftest import EV, RED, body_with


class FakeApi:
    """In-memory stand-in for benchcal_operator.k8s: one run, its Jobs, pods' termination messages."""

    def __init__(self, body):
        self.body = body
        self.jobs: dict[str, dict] = {}
        self.creates: list[str] = []
        self.patches: list[dict] = []
        self.suspends: list[tuple[str, bool]] = []
        self.messages: dict[str, str] = {}
        self.events: dict[str, list[dict]] = {}  # job uid -> events
        self.pods: dict[str, list[dict]] = {}  # job name -> pods
        self.workloads: dict[str, list[dict]] | None = None  # job uid -> Workloads (None: no Kueue)
        self.owned: dict[tuple[str, str], dict] = {}  # (kind, name) -> the run's own objects
        self.refuse: dict[str, k8s.ApiError] = {}  # kind -> the error creating one answers

    async def create_owned(self, manifest):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind in self.refuse:
            raise self.refuse[kind]
        if (kind, name) in self.owned:
            return False
        self.owned[(kind, name)] = copy.deepcopy(manifest)
        return True

    async def get_run(self, namespace, name):
        return copy.deepcopy(self.body)

    async def create_job(self, manifest):
        self.creates.append(manifest["metadata"]["name"])
        if manifest["metadata"]["name"] in self.jobs:
            return False  # 409 AlreadyExists
        job = copy.deepcopy(manifest)
        job["metadata"].update(
            uid=f"uid-{manifest['metadata']['name']}", creationTimestamp="2026-11-30T00:00:00Z"
        )
        self.jobs[manifest["metadata"]["name"]] = job
        return True

    async def set_job_suspend(self, namespace, name, suspend, annotation, value):
        self.suspends.append((name, suspend))
        job = self.jobs[name]
        job["spec"]["suspend"] = suspend
        annotations = job["metadata"].setdefault("annotations", {})
        if suspend:
            annotations[annotation] = value
        else:
            annotations.pop(annotation, None)

    async def job_events(self, namespace, uid):
        return self.events.get(uid, [])

    async def job_pods(self, namespace, name):
        return self.pods.get(name, [])

    async def job_workloads(self, namespace, uid):
        return None if self.workloads is None else self.workloads.get(uid, [])

    async def patch_run_status(self, namespace, name, status):
        self.patches.append(status)
        self.body.setdefault("status", {}).update(copy.deepcopy(status))

    async def termination_message(self, namespace, job_name):
        return self.messages.get(job_name, "")

    def finish(self, name, ok=True, reason="BackoffLimitExceeded"):
        cond = {
            "type": "Complete" if ok else "Failed",
            "status": "True",
            "reason": "" if ok else reason,
            "lastTransitionTime": "2026-11-30T02:00:00Z",
        }
        self.jobs[name]["status"] = {"conditions": [cond], ("succeeded" if ok else "failed"): 1}

    def index(self):
        return {("ml", "tiny"): [observe_job(j) for j in self.jobs.values()]}


def reconcile(api, index=None, settings=Settings(), events=None):
    posted = [] if events is None else events
    return asyncio.run(
        handlers.reconcile(
            "ml",
            "tiny",
            api.index() if index is None else index,
            settings=settings,
            api=api,
            post_event=lambda body, t, r, m: posted.append((t, r, m)),
        )
    )


def test_full_lifecycle_to_succeeded():
    api = FakeApi(body_with())
    events = []
    status = reconcile(api, events=events)
    assert sorted(api.jobs) == [EV["s1"], EV["s2"], EV["s3"]]
    assert status["phase"] == "Running" and status["checkpointsRunning"] == 3
    assert [r for _, r, _ in events].count("JobCreated") == 3
    for name in list(api.jobs):
        api.finish(name)
    status = reconcile(api)
    assert status["phase"] == "Reducing" and RED in api.jobs
    assert api.jobs[RED]["spec"]["template"]["spec"]["containers"][0]["args"][1] == "reduce"
    api.finish(RED)
    events.clear()
    status = reconcile(api, events=events)
    assert status["phase"] == "Succeeded"
    assert api.body["status"]["conditions"][4]["type"] == "Ready"
    assert api.body["status"]["conditions"][4]["status"] == "True"
    assert ("Normal", "RunSucceeded") in [(t, r) for t, r, _ in events]


def test_restart_with_stale_index_creates_no_duplicates():
    api = FakeApi(body_with())
    reconcile(api)
    created = dict(api.jobs)
    reconcile(api, index={})  # operator restarted before its index caught up: creates come back 409
    assert api.jobs.keys() == created.keys()
    assert len(api.creates) == 6 and len(api.jobs) == 3


def test_no_patch_when_nothing_changed():
    api = FakeApi(body_with())
    reconcile(api)
    patches = len(api.patches)
    reconcile(api)
    assert len(api.patches) == patches


def test_concurrency_limit_from_settings():
    api = FakeApi(body_with())
    reconcile(api, settings=Settings(max_running_checkpoints=1))
    assert list(api.jobs) == [EV["s1"]]
    api.finish(EV["s1"])
    reconcile(api, settings=Settings(max_running_checkpoints=1))
    assert list(api.jobs) == [EV["s1"], EV["s2"]]


def test_invalid_spec_is_not_accepted_and_creates_nothing():
    body = body_with()
    body["spec"]["checkpoints"][1]["flops"] = -5
    api = FakeApi(body)
    events = []
    status = reconcile(api, events=events)
    assert api.jobs == {}
    accepted = status["conditions"][0]
    assert accepted["type"] == "Accepted" and accepted["status"] == "False"
    assert "spec.checkpoints[1].flops" in accepted["message"]
    assert events and events[0][:2] == ("Warning", "RunInvalid")


def test_equal_flops_are_refused_before_any_job_starts():
    """A run the reducer could not classify (two of three checkpoints pooled) never spends a Job."""
    body = body_with()
    body["spec"]["checkpoints"][2]["flops"] = body["spec"]["checkpoints"][0]["flops"]
    api = FakeApi(body)
    status = reconcile(api)
    assert api.jobs == {} and status["phase"] == "Invalid"
    accepted = status["conditions"][0]
    assert accepted["type"] == "Accepted" and accepted["status"] == "False"
    assert "spec.checkpoints: 3 checkpoint(s) with only 2 distinct flops value(s)" in accepted["message"]
    assert "spec.checkpoints[0] (s1) and spec.checkpoints[2] (s3) share flops 1e+15" in accepted["message"]


def test_failed_checkpoint_reports_the_termination_message():
    api = FakeApi(body_with())
    reconcile(api)
    api.finish(EV["s2"], ok=False, reason="PodFailurePolicy")
    api.messages[EV["s2"]] = "BadInput: model path /benchcal/model/s2 not found"
    api.finish(EV["s1"])
    api.finish(EV["s3"])
    events = []
    status = reconcile(api, events=events)
    assert status["phase"] == "Failed" and RED not in api.jobs
    assert (
        status["checkpoints"][1]["message"]
        == "PodFailurePolicy: BadInput: model path /benchcal/model/s2 not found"
    )
    warning = [m for t, r, m in events if r == "CheckpointFailed"]
    assert warning and "s2" in warning[0] and "not found" in warning[0]
    api.messages.clear()  # pods garbage-collected: the recorded message survives
    assert reconcile(api)["checkpoints"][1]["message"].endswith("not found")


def test_deleted_run_is_forgotten():
    api = FakeApi(None)
    assert reconcile(api, index={}) is None


RBAC_403 = (
    'jobs.batch is forbidden: User "system:serviceaccount:benchcal-system:bc-benchcal" cannot create '
    'resource "jobs" in API group "batch" in the namespace "ml"'
)
TERMINATING_403 = 'jobs.batch "tiny-eval-s1" is forbidden: unable to create new content in namespace ml because it is being terminated'
QUOTA_403 = 'jobs.batch "tiny-eval-s1" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=10, limited: count/jobs.batch=10'


def test_api_errors_are_translated_for_kopf(monkeypatch):
    kopf = pytest.importorskip("kopf")

    def failing(status, message):
        async def fail(*args, **kwargs):
            raise k8s.ApiError(status, message, "Forbidden")

        return fail

    monkeypatch.setattr(handlers, "reconcile", failing(403, RBAC_403))
    with pytest.raises(kopf.PermanentError, match="RBAC") as rbac:
        asyncio.run(handlers._guarded("ml", "tiny", {}, None))
    assert "cannot create resource" in str(rbac.value)  # the server's own words
    # a 403 from a terminating namespace or a quota is not an RBAC problem (item 9)
    for message, hint in ((TERMINATING_403, "namespace is being deleted"), (QUOTA_403, "ResourceQuota")):
        monkeypatch.setattr(handlers, "reconcile", failing(403, message))
        with pytest.raises(kopf.TemporaryError) as other:
            asyncio.run(handlers._guarded("ml", "tiny", {}, None))
        assert "RBAC" not in str(other.value) and hint in str(other.value) and message in str(other.value)
    monkeypatch.setattr(handlers, "reconcile", failing(503, "etcd timeout"))
    with pytest.raises(kopf.TemporaryError):
        asyncio.run(handlers._guarded("ml", "tiny", {}, None))


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (RBAC_403, "rbac"),
        (TERMINATING_403, "terminating"),
        (QUOTA_403, "quota"),
        ("pods is forbidden: violates PodSecurity", "admission"),
    ],
)
def test_forbidden_cause_reads_the_server_message(message, cause):
    assert k8s.forbidden_cause(message) == cause


def test_api_error_carries_the_status_message_not_the_reason_phrase():
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": TERMINATING_403})
    assert k8s._status_of(exc) == ("Forbidden", TERMINATING_403)


def test_termination_message_picks_the_latest_container():
    pods = [
        {
            "status": {
                "container_statuses": [
                    {"state": {"terminated": {"message": "old", "finished_at": "2026-01-01"}}}
                ]
            }
        },
        {
            "status": {
                "container_statuses": [
                    {"state": {"terminated": {"message": " new\n", "finished_at": "2026-02-01"}}}
                ]
            }
        },
        {"status": {"container_statuses": [{"state": {"running": {}}}]}},
    ]
    assert k8s.latest_termination_message(pods) == "new"
    assert k8s.latest_termination_message([]) == ""


def test_kopf_wiring_never_writes_on_jobs():
    """Jobs get only an index and a low-level event handler (no kopf annotations/finalizers on them)."""
    kopf = pytest.importorskip("kopf")
    registry = kopf.get_default_registry()
    by_plural: dict[str, set[str]] = {}
    for kind in ("_indexing", "_watching", "_changing", "_spawning"):
        for handler in getattr(registry, kind).get_all_handlers():
            by_plural.setdefault(handler.selector.any_name, set()).add(kind)
            if handler.selector.any_name == "jobs":
                assert handler.labels == handlers.JOB_FILTER
    assert by_plural["jobs"] == {"_indexing", "_watching"}
    # no timers, daemons or change handlers on runs: nothing makes kopf add a finalizer (item 10)
    assert by_plural["calibrationruns"] == {"_indexing", "_watching"}
    for kind in ("_indexing", "_watching", "_changing", "_spawning"):
        for handler in getattr(registry, kind).get_all_handlers():
            assert not getattr(handler, "requires_finalizer", None), handler.id


def test_job_name_taken_by_another_run_is_reported_not_retried_forever():
    class Conflicting(FakeApi):
        async def create_job(self, manifest):
            if manifest["metadata"]["name"] == EV["s2"]:
                raise k8s.NameConflict(409, "Job tiny-eval-s2 already exists and belongs to tiny-eval")
            return await super().create_job(manifest)

    api = Conflicting(body_with())
    status = reconcile(api)
    assert status["phase"] == "Invalid"
    accepted = status["conditions"][0]
    assert accepted["status"] == "False" and "belongs to tiny-eval" in accepted["message"]


def _condition(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_a_job_the_server_refuses_fails_fast_with_its_message_and_an_event():
    """Item 4: a 422 on Job create is not retried forever: Invalid/JobRejected + a Warning event."""
    refusal = 'Job.batch "tiny-eval-s1" is invalid: metadata.labels: Invalid value: "gpu queue"'

    class Refusing(FakeApi):
        async def create_job(self, manifest):
            self.creates.append(manifest["metadata"]["name"])
            raise k8s.ApiError(422, refusal, "Invalid")

    api, events = Refusing(body_with()), []
    status = reconcile(api, events=events)
    assert status["phase"] == "Invalid"
    accepted = _condition(status, "Accepted")
    assert accepted["status"] == "False" and accepted["reason"] == "JobRejected"
    assert refusal in accepted["message"]
    assert [(t, r) for t, r, m in events if r == "JobRejected"] == [("Warning", "JobRejected")]
    assert api.creates == [EV["s1"]]  # the plan stops at the first refusal
    reconcile(api)  # the resync: the same generation is not tried again
    assert api.creates == [EV["s1"]]


def _job_without_pods(api, name):
    api.jobs[name]["status"] = {"active": 0}


def test_pods_refused_at_creation_stall_the_run_naming_checkpoint_and_reason():
    """Item 5: FailedCreate events (missing ServiceAccount) -> Stalled, not Running forever."""
    api = FakeApi(body_with())
    reconcile(api)
    _job_without_pods(api, EV["s1"])
    message = 'Error creating: pods "tiny-eval-s1-x" is forbidden: serviceaccount "nope" not found'
    api.events[f"uid-{EV['s1']}"] = [
        {
            "type": "Warning",
            "reason": "FailedCreate",
            "message": message,
            "lastTimestamp": "2026-11-30T00:01:00Z",
        }
    ]
    status = reconcile(api)
    stalled = _condition(status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "FailedCreate"
    assert "checkpoint s1" in stalled["message"] and 'serviceaccount "nope" not found' in stalled["message"]
    s1 = next(c for c in status["checkpoints"] if c["name"] == "s1")
    assert s1["reason"] == "FailedCreate" and status["phase"] not in ("Failed", "Succeeded")


def test_unschedulable_pods_are_reported_after_the_configured_time_not_failed():
    api = FakeApi(body_with())
    reconcile(api)
    api.jobs[EV["s1"]]["status"] = {"active": 1, "ready": 0}
    scheduled = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/12 nodes are available: 12 Insufficient nvidia.com/gpu.",
        "lastTransitionTime": "2026-11-30T00:00:00Z",
    }
    api.pods[EV["s1"]] = [
        {"metadata": {"name": "tiny-eval-s1-abc"}, "status": {"phase": "Pending", "conditions": [scheduled]}}
    ]
    status = reconcile(api, settings=Settings(unschedulable_seconds=60))
    s1 = next(c for c in status["checkpoints"] if c["name"] == "s1")
    assert s1["reason"] == "Unschedulable" and "Insufficient nvidia.com/gpu" in s1["message"]
    assert _condition(status, "Stalled")["status"] == "False"  # reported, not failed
    assert "waiting: checkpoint s1" in _condition(status, "Ready")["message"]
    assert status["phase"] == "Running"
    # not reported before the configured time
    quiet = reconcile(api, settings=Settings(unschedulable_seconds=10**9))
    assert "reason" not in next(c for c in quiet["checkpoints"] if c["name"] == "s1")


def test_a_workload_kueue_has_not_admitted_is_reported():
    api = FakeApi(body_with(queueName="gpu"))
    reconcile(api)
    job = api.jobs[EV["s1"]]
    job["spec"]["suspend"] = True  # Kueue's webhook suspends it
    quota = {
        "type": "QuotaReserved",
        "status": "False",
        "reason": "Inadmissible",
        "message": "LocalQueue gpu doesn't exist",
    }
    api.workloads = {
        f"uid-{EV['s1']}": [{"metadata": {"name": "job-tiny-eval-s1"}, "status": {"conditions": [quota]}}]
    }
    status = reconcile(api)
    s1 = next(c for c in status["checkpoints"] if c["name"] == "s1")
    assert s1["phase"] == "Queued" and s1["reason"] == "Inadmissible"
    assert "LocalQueue gpu doesn't exist" in s1["message"]


def test_the_resync_loop_revisits_stuck_runs_sooner_than_others():
    """Item 10 replaces kopf timers (which add a finalizer): every unfinished run every
    resync_seconds, runs with a stuck Job every stall_check_seconds."""
    from benchcal_operator.observe import JobObservation

    settings = Settings(resync_seconds=120, stall_check_seconds=20)
    stuck = JobObservation("a-eval-s1", "evaluator", "s1", "Running", created_at="2026-11-30T00:00:00Z")
    index = {("ml", "a"): [stuck], ("ml", "b"): []}
    runs, last = [("ml", "a"), ("ml", "b")], {}
    assert handlers.due_runs(runs, index, last, 1000.0, settings) == []  # first sight: start the clocks
    assert handlers.due_runs(runs, index, last, 1025.0, settings) == [("ml", "a")]
    assert handlers.due_runs(runs, index, last, 1121.0, settings) == [("ml", "a"), ("ml", "b")]
    handlers.due_runs([("ml", "b")], index, last, 1122.0, settings)
    assert ("ml", "a") not in last  # a finished or deleted run is forgotten


@pytest.mark.parametrize(
    ("kind", "error", "reason"),
    [
        (
            "Role",
            k8s.ApiError(
                403,
                'roles.rbac.authorization.k8s.io "tiny-benchcal" is forbidden: user '
                '"system:serviceaccount:benchcal-system:bc-benchcal" (groups=[...]) is attempting to grant '
                'RBAC permissions not currently held:\n{APIGroups:[""], Resources:["configmaps"], ...}',
                "Forbidden",
            ),
            "OperatorForbidden",
        ),
        (
            "ServiceAccount",
            k8s.ApiError(
                403,
                'serviceaccounts "tiny-benchcal" is forbidden: unable to create new content in namespace ml '
                "because it is being terminated",
                "Forbidden",
            ),
            "NamespaceTerminating",
        ),
        (
            "ConfigMap",
            k8s.ApiError(
                403,
                'configmaps "tiny-summary-s1" is forbidden: exceeded quota: q, requested: count/configmaps=1',
                "Forbidden",
            ),
            "QuotaExceeded",
        ),
    ],
)
def test_a_namespace_refusing_the_runs_identity_stalls_it_naming_the_object(kind, error, reason):
    """Items 7(a)/8: the run's ServiceAccount, Role, RoleBinding or ConfigMaps cannot be created ->
    Stalled with the object and the server's message; no Job (its pods would be refused)."""
    api = FakeApi(body_with())
    api.refuse[kind] = error
    status = reconcile(api)
    assert api.jobs == {}
    stalled = _condition(status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == reason, stalled
    assert (
        f"creating {kind} tiny-" in stalled["message"] and error.message.split(":")[0] in stalled["message"]
    )
    del api.refuse[kind]  # fixed (quota raised, rights granted): the next reconcile goes on
    status = reconcile(api)
    assert sorted(api.jobs) == sorted(EV[c] for c in ("s1", "s2", "s3"))
    assert _condition(status, "Stalled")["status"] == "False"
    assert ("ServiceAccount", "tiny-benchcal") in api.owned and ("ConfigMap", "tiny-summary-s3") in api.owned
