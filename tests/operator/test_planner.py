"""Pure planner: which Jobs to create or suspend, table-driven."""

from __future__ import annotations

import pytest

from benchcal_operator.planner import CreateJob, SetJobSuspend, decide, rejection, unfinished
from benchcal_operator.settings import Settings
from benchcal_operator.status import JobObservation


def obs(ckpt, phase, suspended=False):
    return JobObservation(f"tiny-eval-{ckpt}", "evaluator", ckpt, phase, suspended=suspended)


def names(actions):
    return [(type(a).__name__, a.name) for a in actions]


@pytest.mark.parametrize(
    ("observed", "limit", "expected"),
    [
        (
            [],
            0,
            [("CreateJob", "tiny-eval-s1"), ("CreateJob", "tiny-eval-s2"), ("CreateJob", "tiny-eval-s3")],
        ),
        ([], 2, [("CreateJob", "tiny-eval-s1"), ("CreateJob", "tiny-eval-s2")]),
        ([obs("s1", "Running"), obs("s2", "Running")], 2, []),
        ([obs("s1", "Succeeded"), obs("s2", "Running")], 2, [("CreateJob", "tiny-eval-s3")]),
        ([obs("s1", "Queued")], 1, []),
        ([obs("s1", "Failed")], 0, []),
        ([obs("s1", "Failed"), obs("s2", "Running")], 0, []),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded")],
            0,
            [("CreateJob", "tiny-reduce")],
        ),
        (
            [
                obs("s1", "Succeeded"),
                obs("s2", "Succeeded"),
                obs("s3", "Succeeded"),
                JobObservation("tiny-reduce", "reducer", "", "Running"),
            ],
            0,
            [],
        ),
    ],
)
def test_decide_table(make_run, observed, limit, expected):
    actions = decide(make_run(), {o.name: o for o in observed}, Settings(max_running_checkpoints=limit))
    assert names(actions) == expected
    for action in actions:
        assert action.manifest["metadata"]["name"] == action.name


def test_decide_is_idempotent_for_the_same_observation(make_run):
    run = make_run()
    assert decide(run, {}, Settings()) == decide(run, {}, Settings())


def test_suspend_stops_creation_and_suspends_own_jobs(make_run):
    observed = {o.name: o for o in [obs("s1", "Running"), obs("s2", "Succeeded")]}
    actions = decide(make_run(suspend=True), observed, Settings())
    assert actions == [SetJobSuspend("tiny-eval-s1", True)]
    resumed = {o.name: o for o in [obs("s1", "Queued", suspended=True)]}
    actions = decide(make_run(), resumed, Settings())
    assert actions[0] == SetJobSuspend("tiny-eval-s1", False)
    assert [a.name for a in actions[1:] if isinstance(a, CreateJob)] == ["tiny-eval-s2", "tiny-eval-s3"]


def test_kueue_owns_suspend_when_a_queue_is_set(make_run):
    observed = {o.name: o for o in [obs("s1", "Queued", suspended=True)]}
    actions = decide(make_run(queueName="gpu"), observed, Settings())
    assert not any(isinstance(a, SetJobSuspend) for a in actions)


def test_trust_remote_code_needs_operator_permission(make_run):
    run = make_run(evaluator={"trustRemoteCode": True})
    assert "BENCHCAL_ALLOW_TRUST_REMOTE_CODE" in rejection(run, Settings())
    assert decide(run, {}, Settings()) == []
    assert rejection(run, Settings(allow_trust_remote_code=True)) == ""
    assert len(decide(run, {}, Settings(allow_trust_remote_code=True))) == 3


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
