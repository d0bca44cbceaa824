"""handlers.reconcile called directly with a fake API and a fake kopf index (no cluster)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from benchcal_operator import handlers, k8s
from benchcal_operator.settings import Settings
from benchcal_operator.status import observe_job

from .conftest import body_with


class FakeApi:
    """In-memory stand-in for benchcal_operator.k8s: one run, its Jobs, pods' termination messages."""

    def __init__(self, body):
        self.body = body
        self.jobs: dict[str, dict] = {}
        self.creates: list[str] = []
        self.patches: list[dict] = []
        self.suspends: list[tuple[str, bool]] = []
        self.messages: dict[str, str] = {}

    async def get_run(self, namespace, name):
        return copy.deepcopy(self.body)

    async def create_job(self, manifest):
        self.creates.append(manifest["metadata"]["name"])
        if manifest["metadata"]["name"] in self.jobs:
            return False  # 409 AlreadyExists
        self.jobs[manifest["metadata"]["name"]] = copy.deepcopy(manifest)
        return True

    async def set_job_suspend(self, namespace, name, suspend):
        self.suspends.append((name, suspend))

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
    assert sorted(api.jobs) == ["tiny-eval-s1", "tiny-eval-s2", "tiny-eval-s3"]
    assert status["phase"] == "Running" and status["checkpointsRunning"] == 3
    assert [r for _, r, _ in events].count("JobCreated") == 3
    for name in list(api.jobs):
        api.finish(name)
    status = reconcile(api)
    assert status["phase"] == "Reducing" and "tiny-reduce" in api.jobs
    assert api.jobs["tiny-reduce"]["spec"]["template"]["spec"]["containers"][0]["args"][1] == "reduce"
    api.finish("tiny-reduce")
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
    assert list(api.jobs) == ["tiny-eval-s1"]
    api.finish("tiny-eval-s1")
    reconcile(api, settings=Settings(max_running_checkpoints=1))
    assert list(api.jobs) == ["tiny-eval-s1", "tiny-eval-s2"]


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


def test_failed_checkpoint_reports_the_termination_message():
    api = FakeApi(body_with())
    reconcile(api)
    api.finish("tiny-eval-s2", ok=False, reason="PodFailurePolicy")
    api.messages["tiny-eval-s2"] = "BadInput: model path /benchcal/model/s2 not found"
    api.finish("tiny-eval-s1")
    api.finish("tiny-eval-s3")
    events = []
    status = reconcile(api, events=events)
    assert status["phase"] == "Failed" and "tiny-reduce" not in api.jobs
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


def test_api_errors_are_translated_for_kopf(monkeypatch):
    kopf = pytest.importorskip("kopf")

    async def forbidden(*args, **kwargs):
        raise k8s.ApiError(403, "jobs.batch is forbidden")

    monkeypatch.setattr(handlers, "reconcile", forbidden)
    with pytest.raises(kopf.PermanentError, match="RBAC"):
        asyncio.run(handlers._guarded("ml", "tiny", {}, None))

    async def unavailable(*args, **kwargs):
        raise k8s.ApiError(503, "etcd timeout")

    monkeypatch.setattr(handlers, "reconcile", unavailable)
    with pytest.raises(kopf.TemporaryError):
        asyncio.run(handlers._guarded("ml", "tiny", {}, None))


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
    assert by_plural["calibrationruns"] == {"_watching", "_spawning"}


def test_job_name_taken_by_another_run_is_reported_not_retried_forever():
    class Conflicting(FakeApi):
        async def create_job(self, manifest):
            if manifest["metadata"]["name"] == "tiny-eval-s2":
                raise k8s.NameConflict(409, "Job tiny-eval-s2 already exists and belongs to tiny-eval")
            return await super().create_job(manifest)

    api = Conflicting(body_with())
    status = reconcile(api)
    assert status["phase"] == "Invalid"
    accepted = status["conditions"][0]
    assert accepted["status"] == "False" and "belongs to tiny-eval" in accepted["message"]
