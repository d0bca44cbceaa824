"""Pure status derivation: Job bodies -> observations -> phase, conditions, counters, events."""

from __future__ import annotations

import pytest

from benchcal_operator.observe import JobObservation, observe_job
from benchcal_operator.status import derive_status, merge_conditions, status_changed, transition_events

from .conftest import PAIRS_KEY, REDUCTION_KEY

T0, T1 = "2026-11-30T01:00:00Z", "2026-11-30T02:00:00Z"


def job_body(status=None, spec=None, name="tiny-eval-s1", checkpoint="s1"):
    labels = {"benchcal.dev/component": "evaluator", "benchcal.dev/checkpoint": checkpoint}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec or {}, "status": status or {}}


@pytest.mark.parametrize(
    ("status", "spec", "phase", "attempts"),
    [
        ({}, {}, "Running", 0),
        ({"active": 1, "startTime": T0}, {}, "Running", 1),
        ({}, {"suspend": True}, "Queued", 0),
        ({"conditions": [{"type": "Suspended", "status": "True"}]}, {}, "Queued", 0),
        (
            {"succeeded": 1, "completionTime": T1, "conditions": [{"type": "Complete", "status": "True"}]},
            {},
            "Succeeded",
            1,
        ),
        (
            {
                "failed": 2,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "lastTransitionTime": T1,
                    }
                ],
            },
            {},
            "Failed",
            2,
        ),
        (
            {
                "failed": 1,
                "conditions": [{"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"}],
            },
            {},
            "Failed",
            1,
        ),
        ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, {}, "Running", 1),
    ],
)
def test_observe_job(status, spec, phase, attempts):
    obs = observe_job(job_body(status, spec))
    assert (obs.phase, obs.attempts, obs.checkpoint, obs.component) == (phase, attempts, "s1", "evaluator")


def obs(ckpt, phase, message=""):
    return JobObservation(
        f"tiny-eval-{ckpt}", "evaluator", ckpt, phase, message=message, started_at=T0, key=PAIRS_KEY
    )


def reducer(phase):
    return JobObservation("tiny-reduce", "reducer", "", phase, key=REDUCTION_KEY)


def _cond(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


@pytest.mark.parametrize(
    ("jobs", "suspend", "phase", "progress", "ready", "failed_cond"),
    [
        ([], False, "Pending", "0/3", "False", "False"),
        ([], True, "Suspended", "0/3", "False", "False"),
        ([obs("s1", "Running")], False, "Running", "0/3", "False", "False"),
        ([obs("s1", "Succeeded"), obs("s2", "Queued")], False, "Running", "1/3", "False", "False"),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded")],
            False,
            "Reducing",
            "3/3",
            "False",
            "False",
        ),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded"), reducer("Running")],
            False,
            "Reducing",
            "3/3",
            "False",
            "False",
        ),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded"), reducer("Succeeded")],
            False,
            "Succeeded",
            "3/3",
            "True",
            "False",
        ),
        (
            [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded"), reducer("Failed")],
            False,
            "Failed",
            "3/3",
            "False",
            "True",
        ),
        (
            [obs("s1", "Succeeded"), obs("s2", "Failed", "oom"), obs("s3", "Running")],
            False,
            "Running",
            "1/3",
            "False",
            "False",
        ),
        ([obs("s1", "Succeeded"), obs("s2", "Failed", "oom")], False, "Failed", "1/3", "False", "True"),
    ],
)
def test_derive_status_table(make_run, jobs, suspend, phase, progress, ready, failed_cond):
    run = make_run(suspend=suspend)
    status = derive_status(run, {j.name: j for j in jobs}, now=T1)
    assert status["phase"] == phase and status["progress"] == progress
    assert status["observedGeneration"] == 1
    assert _cond(status, "Ready")["status"] == ready
    assert _cond(status, "Failed")["status"] == failed_cond
    assert _cond(status, "Accepted")["status"] == "True"
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])
    total = sum(
        status[k]
        for k in ("checkpointsSucceeded", "checkpointsFailed", "checkpointsRunning", "checkpointsPending")
    )
    assert total == status["checkpointsTotal"] == 3


def test_failed_run_names_failed_checkpoints_and_keeps_the_rest(make_run):
    jobs = [
        obs("s1", "Succeeded"),
        obs("s2", "Failed", "PodFailurePolicy: checkpoint not found"),
        obs("s3", "Succeeded"),
    ]
    status = derive_status(make_run(), {j.name: j for j in jobs}, now=T1)
    message = _cond(status, "Failed")["message"]
    assert "s2 (PodFailurePolicy: checkpoint not found)" in message
    assert "results of s1, s3 are kept" in message
    assert status["checkpoints"][1] == {
        "name": "s2",
        "phase": "Failed",
        "flops": 2e15,
        "jobName": "tiny-eval-s2",
        "attempts": 0,
        "startedAt": T0,
        "message": "PodFailurePolicy: checkpoint not found",
    }


def test_rejection_is_accepted_false(make_run):
    status = derive_status(make_run(), {}, now=T1, rejection="spec.evaluator.trustRemoteCode: not allowed")
    assert status["phase"] == "Invalid"
    accepted = _cond(status, "Accepted")
    assert accepted["status"] == "False" and "trustRemoteCode" in accepted["message"]
    assert _cond(status, "Stalled")["status"] == "True"


def test_lastTransitionTime_moves_only_when_status_changes(make_run):
    run = make_run()
    first = derive_status(run, {}, now=T0)
    same = derive_status(run, {}, previous=first, now=T1)
    assert same["conditions"] == first["conditions"] and not status_changed(first, same)
    moved = derive_status(run, {"tiny-eval-s1": obs("s1", "Running")}, previous=first, now=T1)
    assert _cond(moved, "Running")["lastTransitionTime"] == T1
    assert _cond(moved, "Accepted")["lastTransitionTime"] == T0
    assert status_changed(first, moved)


def test_merge_conditions_sets_generation():
    merged = merge_conditions(
        [], [{"type": "Ready", "status": "False", "reason": "Pending", "message": ""}], 7, T0
    )
    assert merged == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Pending",
            "message": "",
            "lastTransitionTime": T0,
            "observedGeneration": 7,
        }
    ]


def test_transition_events(make_run):
    run = make_run()
    before = derive_status(run, {"tiny-eval-s1": obs("s1", "Running")}, now=T0)
    after = derive_status(run, {"tiny-eval-s1": obs("s1", "Failed", "exit 2: no such model")}, now=T1)
    events = transition_events(before, after)
    assert [(e.type, e.reason) for e in events] == [("Warning", "CheckpointFailed"), ("Warning", "RunFailed")]
    assert "s1" in events[0].message and "no such model" in events[0].message
    assert transition_events(after, after) == []


def test_derived_and_reducer_status_fit_the_crd_schema(make_run, run_body):
    """Nothing the operator or reducer writes may be pruned by the structural schema."""
    from benchcal.api import validate_document
    from benchcal.classification import BenchmarkVerdict, StatusClassification
    from benchcal.publish import run_status_patch

    jobs = [
        obs("s1", "Succeeded"),
        obs("s2", "Failed", "x" * 5000),
        obs("s3", "Succeeded"),
        reducer("Failed"),
    ]
    status = derive_status(make_run(), {j.name: j for j in jobs}, now=T1)
    status.update(
        run_status_patch(
            StatusClassification.from_verdicts([BenchmarkVerdict("arc_easy", "robust", 3, {"rho": 1.0})]),
            {"uri": "/r", "sha256": "0" * 64, "size": 1},
        )["status"]
    )
    validate_document({**run_body, "status": status})


def test_all_active_checkpoints_queued_is_reported_as_queued(make_run):
    status = derive_status(make_run(queueName="gpu"), {"tiny-eval-s1": obs("s1", "Queued")}, now=T1)
    assert status["phase"] == "Running" and _cond(status, "Running")["reason"] == "Queued"
    assert "1 queued" in _cond(status, "Ready")["message"]
    running = derive_status(
        make_run(), {"tiny-eval-s1": obs("s1", "Running"), "tiny-eval-s2": obs("s2", "Queued")}, now=T1
    )
    assert _cond(running, "Running")["reason"] == "Evaluating"


REDUCER_FIELDS = ("classification", "resultsRef", "history", "lastChange")


def _merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386, as the API server applies the operator's status patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def test_the_operator_never_clobbers_what_the_reducer_wrote(make_run, run_body):
    """classification, resultsRef, status.history and lastChange are the reducer's: no operator
    status (running, succeeded, failed, invalid) names them, so its merge patch keeps them."""
    from benchcal import history
    from benchcal.api import validate_document
    from benchcal.classification import BenchmarkVerdict, StatusClassification
    from benchcal.publish import run_status_patch
    from benchcal_operator.status import invalid_status

    def entry(generation, group, n):
        cls = StatusClassification.from_verdicts([BenchmarkVerdict("arc_easy", group)])
        ckpts = [f"s{i}" for i in range(1, n + 1)]
        return history.make_entry(cls, generation=generation, checkpoints=ckpts, pairs=[("arc_easy", 0)])

    grown = history.extend((entry(1, "noise", 3),), entry(2, "robust", 5))
    written = run_status_patch(
        StatusClassification.from_verdicts([BenchmarkVerdict("arc_easy", "robust", 0)]),
        {"uri": "/r", "sha256": "0" * 64, "size": 1},
        grown,
    )["status"]
    assert written["lastChange"] == "arc_easy: noise (3 ckpts) → robust (5 ckpts)"
    run = make_run()
    done = [obs("s1", "Succeeded"), obs("s2", "Succeeded"), obs("s3", "Succeeded"), reducer("Succeeded")]
    statuses = [
        derive_status(run, {"tiny-eval-s1": obs("s1", "Running")}, previous=written, now=T1),
        derive_status(run, {j.name: j for j in done}, previous=written, now=T1),
        derive_status(run, {"tiny-eval-s1": obs("s1", "Failed", "boom")}, previous=written, now=T1),
        invalid_status("spec.checkpoints[0].flops: required", 3, previous=written, now=T1),
    ]
    for new in statuses:
        assert not set(REDUCER_FIELDS) & set(new), new.keys()
        after = _merge_patch(written, new)
        assert {k: after[k] for k in REDUCER_FIELDS} == {k: written[k] for k in REDUCER_FIELDS}
    # and the whole status, history included, fits the CRD's structural schema (nothing pruned)
    validate_document({**run_body, "status": _merge_patch(written, statuses[1])})
    too_long = {**written, "history": written["history"] * 11}
    from benchcal.errors import BadInput

    with pytest.raises(BadInput, match=r"status\.history: \d+ item\(s\), more than the \d+ allowed"):
        validate_document({**run_body, "status": too_long})
