"""A CalibrationRun that grows (issue 15): the planner starts only new work, status shows the catch-up.

Jobs here are the manifests the planner itself built, observed as the API server would return
them (``observe_job``), so the keys, labels and annotations are the real ones.
"""

from __future__ import annotations

import copy

from benchcal import naming, work
from benchcal.spec import parse_run
from benchcal_operator import jobs as builders
from benchcal_operator.observe import observe_job
from benchcal_operator.planner import CreateJob, decide
from benchcal_operator.settings import Settings
from benchcal_operator.status import derive_status

from .conftest import RUN_BODY

T0 = "2026-11-30T00:00:00Z"
DONE = {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": T0}], "succeeded": 1}
FAILED = {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": T0}], "failed": 1}
ACTIVE = {"active": 1}


def grown(body, *, generation, **spec):
    out = copy.deepcopy(body)
    out["metadata"]["generation"] = generation
    out["spec"].update(copy.deepcopy(spec))
    return out


def observed(manifests, status=DONE):
    """Observations of built Job manifests, all in one state (the API server's view of them)."""
    out = {}
    for m in manifests:
        body = copy.deepcopy(m)
        body["metadata"].update(uid=f"uid-{m['metadata']['name']}", creationTimestamp=T0)
        body["status"] = copy.deepcopy(status)
        obs = observe_job(body)
        out[obs.name] = obs
    return out


def finished_first_generation(body=RUN_BODY):
    """Generation 1 evaluated and reduced: its Jobs as observed, all Succeeded."""
    run = parse_run(body)
    manifests = [builders.build_evaluator_job(run, c, Settings()) for c in run.checkpoints]
    manifests.append(builders.build_reducer_job(run, Settings()))
    return observed(manifests)


def creates(plan):
    return [a for a in plan.actions if isinstance(a, CreateJob)]


def _ckpt(name, flops):
    return {"name": name, "model": {"builtin": f"tiny-series/{name}"}, "flops": flops}


def test_appending_two_checkpoints_creates_exactly_two_evaluator_jobs_then_a_new_reducer():
    jobs = finished_first_generation()
    body = grown(
        RUN_BODY,
        generation=2,
        checkpoints=[*RUN_BODY["spec"]["checkpoints"], _ckpt("s4", 8e15), _ckpt("s5", 16e15)],
    )
    run = parse_run(body)
    plan = decide(run, jobs, Settings())
    assert [(a.component, a.checkpoint) for a in creates(plan)] == [("evaluator", "s4"), ("evaluator", "s5")]

    # meanwhile: Ready=False/Progressing, the observed generation is the new one, nothing of the
    # earlier reduction is reported as this generation's
    status = derive_status(run, jobs, now=T0)
    cond = {c["type"]: c for c in status["conditions"]}
    assert status["observedGeneration"] == 2 and status["progress"] == "3/5"
    assert cond["Ready"]["status"] == "False" and cond["Ready"]["reason"] == "Progressing"
    assert "earlier reduction" in cond["Ready"]["message"]
    assert cond["Reconciling"]["status"] == "True" and cond["Stalled"]["status"] == "False"
    assert status["reducer"] == {"phase": "Pending"}

    # the two new Jobs succeed: one new reducer Job (a new name: its input changed), reducing all five
    jobs |= observed([a.manifest for a in creates(plan)])
    plan = decide(run, jobs, Settings())
    (reducer,) = creates(plan)
    assert reducer.component == "reducer" and reducer.name not in jobs
    assert reducer.name == naming.reducer_job_name("tiny", work.reduction_key(run))
    args = reducer.manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--checkpoints") + 1] == "s1,s2,s3,s4,s5"

    jobs |= observed([reducer.manifest])
    status = derive_status(run, jobs, now=T0)
    cond = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Succeeded" and cond["Ready"]["status"] == "True"
    assert cond["Reconciling"]["status"] == "False"
    assert decide(run, jobs, Settings()).actions == []


def test_a_generation_that_changes_nothing_the_work_reads_creates_nothing():
    jobs = finished_first_generation()
    tolerations = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for spec in ({"suspend": False}, {"evaluator": {"tolerations": tolerations}}, {"queueName": "other"}):
        run = parse_run(grown(RUN_BODY, generation=2, **spec))
        assert decide(run, jobs, Settings()).actions == [], spec
        assert derive_status(run, jobs, now=T0)["phase"] == "Succeeded", spec


def test_adding_a_benchmark_gives_every_checkpoint_a_new_job_with_all_its_pairs():
    jobs = finished_first_generation()
    suite = copy.deepcopy(RUN_BODY["spec"]["suite"])
    suite["benchmarks"].append({"name": "piqa", "shots": [0]})
    run = parse_run(grown(RUN_BODY, generation=2, suite=suite))
    made = creates(decide(run, jobs, Settings()))
    assert [a.checkpoint for a in made] == ["s1", "s2", "s3"]
    for action in made:
        assert action.name not in jobs  # a new Job beside the Succeeded one, never a rename
        meta = action.manifest["metadata"]
        assert meta["annotations"][naming.PAIRS_ANNOTATION] == "arc_easy:0,3;jeopardy:0,3;piqa:0"
        args = action.manifest["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "piqa:0" in args[args.index("--tasks") + 1]  # the full list: resume skips finished pairs


# generation 1 with four checkpoints, so that one can be removed (three distinct FLOPs must stay)
FOUR = grown(RUN_BODY, generation=1, checkpoints=[*RUN_BODY["spec"]["checkpoints"], _ckpt("s4", 8e15)])


def test_removing_a_checkpoint_only_reduces_again_without_it():
    jobs = finished_first_generation(FOUR)
    run = parse_run(grown(FOUR, generation=2, checkpoints=FOUR["spec"]["checkpoints"][:3]))
    (reducer,) = creates(decide(run, jobs, Settings()))
    assert reducer.component == "reducer"
    args = reducer.manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--checkpoints") + 1] == "s1,s2,s3"
    assert derive_status(run, jobs, now=T0)["checkpointsTotal"] == 3


def test_a_new_reduction_waits_for_an_earlier_reducer_still_running():
    run1 = parse_run(FOUR)
    jobs = finished_first_generation(FOUR)
    old = builders.build_reducer_job(run1, Settings())
    jobs |= observed([old], ACTIVE)  # generation 1's reducer has not finished yet
    run2 = parse_run(grown(FOUR, generation=2, checkpoints=FOUR["spec"]["checkpoints"][:3]))
    plan = decide(run2, jobs, Settings())
    assert creates(plan) == []  # no second reducer racing the first for status.classification
    assert plan.blocked["reducer"].reason == "WaitingForEarlierReducer"
    assert old["metadata"]["name"] in plan.blocked["reducer"].message
    jobs |= observed([old], DONE)
    (reducer,) = creates(decide(run2, jobs, Settings()))
    assert reducer.component == "reducer" and reducer.name != old["metadata"]["name"]


def test_a_job_of_earlier_pairs_still_running_is_waited_for_and_a_failed_one_superseded():
    run1 = parse_run(RUN_BODY)
    running = observed([builders.build_evaluator_job(run1, run1.checkpoints[0], Settings())], ACTIVE)
    failed = observed([builders.build_evaluator_job(run1, run1.checkpoints[1], Settings())], FAILED)
    suite = copy.deepcopy(RUN_BODY["spec"]["suite"])
    suite["shots"] = [0, 3, 5]
    run2 = parse_run(grown(RUN_BODY, generation=2, suite=suite))
    made = creates(decide(run2, running | failed, Settings()))
    # s1 waits for its running Job (the new one resumes from its results); s2's failure was of other
    # pairs: the new pairs get a fresh Job, as does s3
    assert [a.checkpoint for a in made] == ["s2", "s3"]
    status = derive_status(run2, running | failed, now=T0)
    assert [e["phase"] for e in status["checkpoints"]] == ["Running", "Pending", "Pending"]


def test_names_are_pure_an_operator_that_crashed_after_create_finds_its_job():
    jobs = finished_first_generation()
    body = grown(RUN_BODY, generation=2, checkpoints=[*RUN_BODY["spec"]["checkpoints"], _ckpt("s4", 8e15)])
    first = creates(decide(parse_run(body), jobs, Settings()))
    again = creates(decide(parse_run(copy.deepcopy(body)), jobs, Settings()))
    assert [a.name for a in first] == [a.name for a in again]
    jobs |= observed([first[0].manifest], ACTIVE)  # created, then the operator died
    assert creates(decide(parse_run(body), jobs, Settings())) == []


def _legacy(manifests):
    """The same Jobs as an operator from before growth created them: no keys, no annotations."""
    out = []
    for m in manifests:
        m = copy.deepcopy(m)
        for label in (naming.PAIRS_KEY_LABEL, naming.REDUCTION_KEY_LABEL):
            m["metadata"]["labels"].pop(label, None)
        m["metadata"]["annotations"] = {}
        out.append(m)
    return out


def test_jobs_of_an_operator_from_before_growth_count_as_what_they_did():
    """Jobs without keys (created while the suite was immutable): an upgrade re-runs nothing; their
    pairs are read from their --tasks, and their reducer stands only until the run changes."""
    run = parse_run(RUN_BODY)
    manifests = [builders.build_evaluator_job(run, c, Settings()) for c in run.checkpoints]
    legacy = observed(_legacy([*manifests, builders.build_reducer_job(run, Settings())]))
    assert all(not o.key for o in legacy.values())
    assert decide(run, legacy, Settings()).actions == []
    assert derive_status(run, legacy, now=T0)["phase"] == "Succeeded"

    body = grown(RUN_BODY, generation=2, checkpoints=[*RUN_BODY["spec"]["checkpoints"], _ckpt("s4", 8e15)])
    (new,) = creates(decide(parse_run(body), legacy, Settings()))
    assert new.checkpoint == "s4"
    legacy |= observed([new.manifest])
    (reducer,) = creates(decide(parse_run(body), legacy, Settings()))  # the old reducer is not reused
    assert reducer.component == "reducer"

    suite = copy.deepcopy(RUN_BODY["spec"]["suite"])
    suite["shots"] = [0, 3, 5]
    more = creates(decide(parse_run(grown(RUN_BODY, generation=2, suite=suite)), legacy, Settings()))
    assert [a.checkpoint for a in more] == ["s1", "s2", "s3"]  # their --tasks lack the 5-shot pairs
