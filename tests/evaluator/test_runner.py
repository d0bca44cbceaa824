"""The evaluation runner on a tiny random Llama: resume, failure isolation, the summary, one model
load per checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchcal.results import read_summary, result_path
from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from benchcal_eval.runner import run_checkpoint
from tests.evaluator.checkpoint_runs import SCORED, CountingEngine, run_pairs, tiny_lm, tiny_tasks


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return tiny_tasks(tmp_path_factory.mktemp("tasks"))


def test_resume_skips_finished_pairs_and_keeps_their_results(lm, tasks, tmp_path):
    # "Interrupted" run: only one pair finished.
    run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    [first] = read_summary(tmp_path).results
    done_file = result_path(tmp_path, "tiny_mc", 0, first.config_key)
    before = done_file.read_bytes()
    summary, second = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path)
    assert done_file.read_bytes() == before  # not rewritten
    assert len(second.passes) == 1 and len(second.passes[0]) == 5  # six pairs, one skipped, five in one pass
    assert len(summary.results) == 6 and not summary.failures
    # the summary says what this call did: what a grown CalibrationRun's e2e test counts
    assert (summary.pairs_resumed, summary.pairs_computed) == (1, 5)
    assert summary.requests_scored == second.calls[0] == read_summary(tmp_path).requests_scored
    # Same numbers as an uninterrupted run.
    fresh, _ = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path / "fresh")
    key = lambda r: (r.benchmark, r.num_fewshot)  # noqa: E731
    got = {key(r): (r.accuracy, r.n, r.config_key) for r in summary.results}
    want = {key(r): (r.accuracy, r.n, r.config_key) for r in fresh.results}
    assert got == want
    # A third run does nothing at all.
    again, third = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path)
    assert third.calls == [] and (again.pairs_resumed, again.pairs_computed, again.requests_scored) == (
        6,
        0,
        0,
    )


def test_changed_config_recomputes_the_pair_and_keeps_the_other(lm, tasks, tmp_path):
    full, _ = run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    summary, engine = run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path, limit=2)
    assert engine.calls == [6]  # 2 examples x 3 choices, recomputed
    assert summary.results[0].n == 2
    smoke_key, full_key = summary.results[0].config_key, full.results[0].config_key
    assert smoke_key != full_key
    assert json.loads(result_path(tmp_path, "tiny_mc", 0, smoke_key).read_text())["n"] == 2
    assert json.loads(result_path(tmp_path, "tiny_mc", 0, full_key).read_text())["n"] == 6  # still there


def test_a_smoke_run_leaves_the_full_results_intact(lm, tasks, tmp_path):
    full, _ = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path, per_example=True)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*.json*") if p.name != "summary.json"}
    smoke, _ = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path, limit=2)  # --limit 2 into the same directory
    assert all(r.n <= 2 for r in smoke.results) and read_summary(tmp_path).results == smoke.results
    assert all(p.read_bytes() == data for p, data in files.items())  # nothing finished was touched
    again, engine = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path)  # the full configuration again
    assert engine.calls == []  # every pair reused, nothing recomputed
    assert read_summary(tmp_path).results == again.results == full.results


def test_overwrite_replaces_only_results_of_its_own_key(lm, tasks, tmp_path):
    smoke, _ = run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path, limit=2)
    full, _ = run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    smoke_file = result_path(tmp_path, "tiny_mc", 0, smoke.results[0].config_key)
    full_file = result_path(tmp_path, "tiny_mc", 0, full.results[0].config_key)
    smoke_bytes, full_before = smoke_file.read_bytes(), json.loads(full_file.read_text())
    _, engine = run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path, overwrite=True)
    assert engine.calls == [18]  # recomputed although finished
    after = json.loads(full_file.read_text())
    assert (
        after["seconds"] != full_before["seconds"] or after["tokens_scored"] == full_before["tokens_scored"]
    )
    assert {k: v for k, v in after.items() if k != "seconds"} == {
        k: v for k, v in full_before.items() if k != "seconds"
    }  # same numbers, rewritten
    assert smoke_file.read_bytes() == smoke_bytes  # another configuration: untouched


def test_finished_pairs_never_load_the_model(lm, tasks, tmp_path):
    from benchcal_eval.runner import CheckpointModel, evaluate_checkpoint, run_checkpoint

    plan = prepare(grid([tasks["tiny_mc"]], (0,)))
    run_checkpoint(lm, CountingEngine(lm), plan, tmp_path, checkpoint="ck")

    def load():
        raise AssertionError("the model was loaded although every pair is finished")

    summary = evaluate_checkpoint(CheckpointModel(lm.key, lm.identity, load), plan, tmp_path, checkpoint="ck")
    assert len(summary.results) == 1 and not summary.failures


def test_one_failing_pair_does_not_stop_the_others(lm, tasks, tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"context": "the cat", "continuation": " ".join(["mat"] * 400)}) + "\n")
    long_task = replace(tasks["tiny_lm"], name="tiny_long", data_file=str(data))
    plan = prepare(grid([tasks["tiny_mc"], long_task, tasks["tiny_schema"]], (0,)))
    summary = run_checkpoint(lm, CountingEngine(lm), plan, tmp_path / "out", checkpoint="ck")
    assert [r.benchmark for r in summary.results] == ["tiny_mc", "tiny_schema"]
    assert [(f.benchmark, f.num_fewshot) for f in summary.failures] == [("tiny_long", 0)]
    assert "max-length" in summary.failures[0].error
    assert not (tmp_path / "out" / "results" / "tiny_long").exists()
    assert read_summary(tmp_path / "out").failures[0].benchmark == "tiny_long"


def test_the_summary_covers_exactly_the_pairs_of_the_call(lm, tasks, tmp_path):
    # One call evaluates a whole checkpoint (benchcal.commands): its summary lists its own pairs.
    run_pairs(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    summary, _ = run_pairs(lm, tasks, ["tiny_schema"], (0, 1), tmp_path)
    assert sorted((r.benchmark, r.num_fewshot) for r in summary.results) == [
        ("tiny_schema", 0),
        ("tiny_schema", 1),
    ]
    assert sorted((r.benchmark, r.num_fewshot) for r in read_summary(tmp_path).results) == [
        ("tiny_schema", 0), ("tiny_schema", 1)
    ]  # fmt: skip
    assert len(list((tmp_path / "results" / "tiny_mc").glob("0shot.*.json"))) == 1  # the other call's is kept


def test_pairs_with_different_shot_lists_run_in_one_call_with_one_model(lm, tasks, tmp_path):
    from benchcal.tasks.selection import select

    pairs = select("tiny_mc:0;tiny_schema:0,1", extra=list(tasks.values()))
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [
        ("tiny_mc", 0), ("tiny_schema", 0), ("tiny_schema", 1)
    ]  # fmt: skip
    assert len(engine.passes) == 1 and len(engine.passes[0]) == 3 and not summary.failures
