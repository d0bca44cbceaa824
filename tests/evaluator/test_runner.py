"""The evaluation runner on a tiny random Llama: correct wiring, resume, failure isolation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchcal.results import read_summary, result_path
from benchcal.tasks.registry import load_task_file
from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from benchcal_eval.requests import EngineStats
from benchcal_eval.runner import run_checkpoint
from benchcal_eval.sandbox import Limits
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks

SCORED = ("tiny_mc", "tiny_lm", "tiny_schema")


@pytest.fixture(scope="module")
def lm():
    from benchcal_eval.models import load_model

    return load_model(str(tiny_checkpoint_dir()), dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return {t.name: t for t in load_task_file(write_tiny_tasks(tmp_path_factory.mktemp("tasks")))}


class CountingEngine:
    """The real engine, recording how many requests each call got."""

    def __init__(self, lm):
        from benchcal_eval.engine import ScoringEngine

        self.inner = ScoringEngine(lm, token_budget=512)
        self.calls: list[int] = []

    @property
    def stats(self) -> EngineStats:
        return self.inner.stats

    def score(self, requests, progress=None):
        self.calls.append(len(requests))
        return self.inner.score(requests, progress)

    def generate(self, requests, progress=None):
        self.calls.append(len(requests))
        return self.inner.generate(requests, progress)


class CannedEngine:
    """Answers generation requests with fixed text, in request order (for metric wiring tests)."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.stats = EngineStats()

    def generate(self, requests, progress=None):
        assert len(requests) == len(self.outputs)
        return [list(o) for o in self.outputs]


def _run(lm, tasks, names, shots, out, **kw):
    plan = prepare(grid([tasks[n] for n in names], shots), **kw)
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, plan, out, checkpoint="ck", flops=1e15)
    return summary, engine


def test_scores_match_the_one_request_at_a_time_reference(lm, tasks, tmp_path):
    from benchcal_eval.engine import naive_score
    from benchcal_eval.metrics import score_choices
    from benchcal_eval.prompts import build_instances
    from benchcal_eval.tokenize import encode_task

    summary, _ = _run(lm, tasks, SCORED, (0, 1), tmp_path, per_example=True)
    assert not summary.failures and len(summary.results) == 6
    for result in summary.results:
        task = tasks[result.benchmark]
        rows = plan_rows = prepare(grid([task], (result.num_fewshot,))).examples[task.name]
        instances = build_instances(task, rows, result.num_fewshot)
        encoded = encode_task(task, rows, instances, lm.tokenizer, lm.max_length)
        per_example = [
            json.loads(line)
            for line in (tmp_path / "examples" / task.name / f"{result.num_fewshot}shot.jsonl")
            .read_text()
            .splitlines()
        ]
        expected = []
        for inst, enc, row in zip(instances, encoded, per_example, strict=True):
            ref = naive_score(lm.model, enc.requests, lm.max_length)
            if task.task_type == "language_modeling":
                expected.append(ref[0].greedy)
                assert row["logprob"] == pytest.approx(ref[0].logprob, abs=1e-3)
            else:
                choice = score_choices(inst, ref)
                expected.append(choice.correct)
                assert row["logprobs"] == pytest.approx([r.logprob for r in ref], abs=1e-3)
            assert row["index"] == inst.index
        assert [r["correct"] for r in per_example] == expected
        assert result.accuracy == pytest.approx(sum(expected) / len(expected))
        assert result.n == len(plan_rows) and result.config_key and result.tokens_scored > 0
    stored = read_summary(tmp_path)
    assert stored.checkpoint == "ck" and stored.flops == 1e15 and stored.finished_at
    assert stored.model["source"] == str(tiny_checkpoint_dir())


def test_resume_skips_finished_pairs_and_keeps_their_results(lm, tasks, tmp_path):
    # "Interrupted" run: only one pair finished.
    _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    done_file = result_path(tmp_path, "tiny_mc", 0)
    before = done_file.read_bytes()
    summary, second = _run(lm, tasks, SCORED, (0, 1), tmp_path)
    assert done_file.read_bytes() == before  # not rewritten
    assert len(second.calls) == 5  # six pairs, one skipped
    assert len(summary.results) == 6 and not summary.failures
    # Same numbers as an uninterrupted run.
    fresh, _ = _run(lm, tasks, SCORED, (0, 1), tmp_path / "fresh")
    key = lambda r: (r.benchmark, r.num_fewshot)  # noqa: E731
    got = {key(r): (r.accuracy, r.n, r.config_key) for r in summary.results}
    want = {key(r): (r.accuracy, r.n, r.config_key) for r in fresh.results}
    assert got == want
    # A third run does nothing at all.
    _, third = _run(lm, tasks, SCORED, (0, 1), tmp_path)
    assert third.calls == []


def test_changed_config_recomputes_the_pair(lm, tasks, tmp_path):
    _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    summary, engine = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path, limit=2)
    assert engine.calls == [6]  # 2 examples x 3 choices, recomputed
    assert summary.results[0].n == 2
    assert json.loads(result_path(tmp_path, "tiny_mc", 0).read_text())["n"] == 2


def test_one_failing_pair_does_not_stop_the_others(lm, tasks, tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"context": "the cat", "continuation": " ".join(["mat"] * 400)}) + "\n")
    long_task = replace(tasks["tiny_lm"], name="tiny_long", data_file=str(data))
    plan = prepare(grid([tasks["tiny_mc"], long_task, tasks["tiny_schema"]], (0,)))
    summary = run_checkpoint(lm, CountingEngine(lm), plan, tmp_path / "out", checkpoint="ck")
    assert [r.benchmark for r in summary.results] == ["tiny_mc", "tiny_schema"]
    assert [(f.benchmark, f.num_fewshot) for f in summary.failures] == [("tiny_long", 0)]
    assert "max-length" in summary.failures[0].error
    assert not result_path(tmp_path / "out", "tiny_long", 0).exists()
    assert read_summary(tmp_path / "out").failures[0].benchmark == "tiny_long"


def test_generation_exact_match_is_wired_through(lm, tasks, tmp_path):
    plan = prepare(grid([tasks["tiny_gen"]], (0,)), per_example=True)
    outputs = [[" in France\nQuestion: next"], [" The answer is 42"], [" mat"]]
    summary = run_checkpoint(lm, CannedEngine(outputs), plan, tmp_path, checkpoint="ck")
    result = summary.results[0]
    assert result.metric == "exact_match" and result.n == 3
    assert result.accuracy == pytest.approx(
        2 / 3
    )  # alias match and "mat"; "The answer is 42" is not a prefix match


def test_code_pass_at_k_runs_completions_in_the_sandbox(lm, tmp_path):
    rows = [
        {"task_id": "p/0", "prompt": "def add(a, b):\n", "entry_point": "add", "canonical_solution": "    return a + b\n",
         "test": "", "test_inputs": ["(1, 2)", "(2, 2)"], "test_outputs": ["3", "4"], "language": "python"},
        {"task_id": "p/1", "prompt": "def neg(a):\n", "entry_point": "neg", "canonical_solution": "    return -a\n",
         "test": "", "test_inputs": ["(1,)"], "test_outputs": ["-1"], "language": "python"},
    ]  # fmt: skip
    (tmp_path / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n- {name: tiny_code, category: toy, task_type: code_evaluation, data_file: code.jsonl,\n"
        "   pass_at_k: 1, generations_per_sample: 2, max_new_tokens: 8}\n"
    )
    [task] = load_task_file(tmp_path / "tasks.yaml")
    outputs = [
        ["    return a + b\n", "    return a * b\n"],
        ["    while True:\n        pass\n", "    return -a\n"],
    ]
    plan = prepare(grid([task], (0,)), per_example=True, sandbox=Limits(timeout_s=2.0, memory_mb=512))
    summary = run_checkpoint(lm, CannedEngine(outputs), plan, tmp_path / "out", checkpoint="ck")
    result = summary.results[0]
    assert result.metric == "pass@1" and result.accuracy == pytest.approx(0.5)  # 1/2 on each problem
    per_example = [
        json.loads(x) for x in (tmp_path / "out/examples/tiny_code/0shot.jsonl").read_text().splitlines()
    ]
    assert [r["passed"] for r in per_example] == [1, 1]
    assert per_example[1]["samples"][0]["result"].startswith("timeout")


def test_the_summary_covers_exactly_the_pairs_of_the_call(lm, tasks, tmp_path):
    # One call evaluates a whole checkpoint (benchcal.commands): its summary lists its own pairs.
    _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    summary, _ = _run(lm, tasks, ["tiny_schema"], (0, 1), tmp_path)
    assert sorted((r.benchmark, r.num_fewshot) for r in summary.results) == [
        ("tiny_schema", 0),
        ("tiny_schema", 1),
    ]
    assert sorted((r.benchmark, r.num_fewshot) for r in read_summary(tmp_path).results) == [
        ("tiny_schema", 0), ("tiny_schema", 1)
    ]  # fmt: skip
    assert result_path(tmp_path, "tiny_mc", 0).exists()  # the other call's finished result is kept


def test_pairs_with_different_shot_lists_run_in_one_call_with_one_model(lm, tasks, tmp_path):
    from benchcal.tasks.selection import select

    pairs = select("tiny_mc:0;tiny_schema:0,1", extra=list(tasks.values()))
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [
        ("tiny_mc", 0), ("tiny_schema", 0), ("tiny_schema", 1)
    ]  # fmt: skip
    assert len(engine.calls) == 3 and not summary.failures
