"""Pure planner: which Jobs to create or suspend, table-driven."""

from __future__ import annotations

import pytest

from benchcal_operator.observe import JobObservation
from benchcal_operator.planner import (
    CreateJob,
    EnsureObjects,
    SetJobSuspend,
    decide,
    rejection,
    split_by_owner,
    unfinished,
)
from benchcal_operator.settings import Settings

from .conftest import EV, PAIRS_KEY, RED, REDUCTION_KEY


def obs(ckpt, phase, suspended=False, by_us=False, kueue=False, owner="uid-1"):
    return JobObservation(
        EV[ckpt],
        "evaluator",
        ckpt,
        phase,
        key=PAIRS_KEY,
        suspended=suspended,
        suspended_by_operator=by_us,
        kueue=kueue,
        owner_uid=owner,
    )


def names(actions):
    """The Job actions (the run's own objects before them: test_identity_comes_before_the_first_job)."""
    return [(type(a).__name__, a.name) for a in actions if not isinstance(a, EnsureObjects)]


@pytest.mark.parametrize(
    ("observed", "limit", "expected"),
    [
        (
            [],
            0,
            [("CreateJob", EV["s1"]), ("CreateJob", EV["s2"]), ("CreateJob", EV["s3"])],
        ),
        ([], 2, [("CreateJob", EV["s1"]), ("CreateJob", EV["s2"])]),
        ([obs("s1", "Running"), obs("s2", "Running")], 2, []),
        ([obs("s1", "Succeeded"), obs("s2", "Running")], 2, [("CreateJob", EV["s3"])]),
        ([obs("s1", "Queued")], 1, []),
        ([obs("s1", "Failed")], 0, []),
        ([obs("s1", "Failed"), obs("s2", "Running")], 0, []),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded")],
            0,
            [("CreateJob", RED)],
        ),
        (
            [
                obs("s1", "Succeeded"),
                obs("s2", "Succeeded"),
                obs("s3", "Succeeded"),
                JobObservation(RED, "reducer", "", "Running", key=REDUCTION_KEY),
            ],
            0,
            [],
        ),
    ],
)
def test_decide_table(make_run, observed, limit, expected):
    actions = decide(
        make_run(), {o.name: o for o in observed}, Settings(max_running_checkpoints=limit)
    ).actions
    assert names(actions) == expected
    for action in actions:
        if isinstance(action, EnsureObjects):
            continue
        assert action.manifest["metadata"]["name"] == action.name


def test_decide_is_idempotent_for_the_same_observation(make_run):
    run = make_run()
    assert decide(run, {}, Settings()).actions == decide(run, {}, Settings()).actions


def test_suspend_stops_creation_and_suspends_own_jobs(make_run):
    observed = {o.name: o for o in [obs("s1", "Running"), obs("s2", "Succeeded")]}
    actions = decide(make_run(suspend=True), observed, Settings()).actions
    assert actions == [SetJobSuspend(EV["s1"], True)]
    resumed = {o.name: o for o in [obs("s1", "Queued", suspended=True, by_us=True)]}
    actions = decide(make_run(), resumed, Settings()).actions
    assert actions[0] == SetJobSuspend(EV["s1"], False)
    assert [a.name for a in actions[1:] if isinstance(a, CreateJob)] == [EV["s2"], EV["s3"]]


def test_only_jobs_the_operator_suspended_are_resumed(make_run):
    """Item 11: where Kueue manages Jobs without a queue label (manageJobsWithoutQueueName, a
    default LocalQueue) it suspends them itself; the operator must not unsuspend them."""
    by_kueue = {o.name: o for o in [obs("s1", "Queued", suspended=True, by_us=False)]}
    assert not any(isinstance(a, SetJobSuspend) for a in decide(make_run(), by_kueue, Settings()).actions)


def test_kueue_owns_suspend_when_a_queue_is_set_or_the_job_is_labelled(make_run):
    observed = {o.name: o for o in [obs("s1", "Queued", suspended=True)]}
    actions = decide(make_run(queueName="gpu"), observed, Settings()).actions
    assert not any(isinstance(a, SetJobSuspend) for a in actions)
    labelled = {o.name: o for o in [obs("s1", "Running", kueue=True)]}
    actions = decide(make_run(suspend=True), labelled, Settings()).actions
    assert not any(isinstance(a, SetJobSuspend) for a in actions)


def test_jobs_of_a_deleted_namesake_are_not_adopted(make_run):
    """Item 12: a run deleted and re-created under the same name before garbage collection must not
    take over the old Jobs: ownership is by UID; the checkpoint waits for the old Job to go."""
    run = make_run()
    old = {o.name: o for o in [obs("s1", "Succeeded", owner="uid-old"), obs("s2", "Failed", owner="uid-old")]}
    own, stale = split_by_owner(run, old)
    assert own == {} and set(stale) == {EV["s1"], EV["s2"]}
    plan = decide(run, own, Settings(), stale)
    assert names(plan.actions) == [("CreateJob", EV["s3"])]  # not blocked, not failed
    assert set(plan.blocked) == {"s1", "s2"} and plan.blocked["s1"].reason == "WaitingForGarbageCollection"


def test_trust_remote_code_needs_operator_permission(make_run):
    run = make_run(evaluator={"trustRemoteCode": True})
    assert "BENCHCAL_ALLOW_TRUST_REMOTE_CODE" in rejection(run, Settings())
    assert decide(run, {}, Settings()).actions == []
    assert rejection(run, Settings(allow_trust_remote_code=True)) == ""
    assert len(names(decide(run, {}, Settings(allow_trust_remote_code=True)).actions)) == 3


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, True),
        ("Running", True),
        ("Reducing", True),
        ("Succeeded", False),
        ("Failed", False),
        ("Invalid", False),
    ],
)
def test_unfinished(phase, expected):
    assert unfinished({"phase": phase} if phase else {}) is expected


def test_identity_comes_before_the_first_job_of_every_plan_that_creates_one(make_run):
    """Items 7(a), 8: each plan creating Jobs first ensures the run's ServiceAccount, Role, RoleBinding
    and summary ConfigMaps (level-based: one deleted in between comes back with the next Job)."""
    run = make_run(evaluator={"shards": 2})
    actions = decide(run, {}, Settings(max_running_checkpoints=1)).actions
    assert [type(a).__name__ for a in actions] == ["EnsureObjects", "CreateJob"]
    ensure = actions[0]
    assert ensure.for_keys == ("s1",)
    kinds = [(m["kind"], m["metadata"]["name"]) for m in ensure.manifests]
    assert kinds[:3] == [
        ("ServiceAccount", "tiny-benchcal"),
        ("Role", "tiny-benchcal"),
        ("RoleBinding", "tiny-benchcal"),
    ]
    assert kinds[3:] == [("ConfigMap", f"tiny-summary-{c}-{i}") for c in ("s1", "s2", "s3") for i in (0, 1)]
    done = [obs(c, "Succeeded") for c in ("s1", "s2", "s3")]
    actions = decide(run, {o.name: o for o in done}, Settings()).actions
    assert [type(a).__name__ for a in actions] == ["EnsureObjects", "CreateJob"]
    assert actions[0].for_keys == ("reducer",)
    running = [obs("s1", "Running")]
    assert decide(run, {o.name: o for o in running}, Settings(max_running_checkpoints=1)).actions == []
    # a spec-chosen ServiceAccount: nothing but the ConfigMaps
    own_sa = make_run(evaluator={"serviceAccountName": "reader"})
    ensure = decide(own_sa, {}, Settings()).actions[0]
    assert {m["kind"] for m in ensure.manifests} == {"ConfigMap"}
