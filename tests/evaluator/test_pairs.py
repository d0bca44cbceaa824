"""One pair's result on a tiny random Llama (``benchcal_eval.pairs``, run through the runner):
scores against the one-request-at-a-time reference, generation and code wiring, continuous
metrics, category counts."""

from __future__ import annotations

import json
import math

import pytest

from benchcal.results import examples_path, read_summary, result_path
from benchcal.tasks.registry import load_task_file
from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from benchcal_eval.requests import EngineStats
from benchcal_eval.runner import run_checkpoint
from benchcal_eval.sandbox import Limits
from tests.evaluator.checkpoint_runs import SCORED, CountingEngine, run_pairs, tiny_lm, tiny_tasks
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return tiny_tasks(tmp_path_factory.mktemp("tasks"))


class CannedEngine:
    """Answers generation requests with fixed text, in request order (for metric wiring tests)."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.stats = EngineStats()

    def generate(self, requests, progress=None):
        assert len(requests) == len(self.outputs)
        return [list(o) for o in self.outputs]


def test_scores_match_the_one_request_at_a_time_reference(lm, tasks, tmp_path):
    from benchcal_eval.engine import naive_score
    from benchcal_eval.metrics import score_choices
    from benchcal_eval.prompts import build_instances
    from benchcal_eval.tokenize import encode_task

    summary, _ = run_pairs(lm, tasks, SCORED, (0, 1), tmp_path, per_example=True)
    assert not summary.failures and len(summary.results) == 6
    for result in summary.results:
        task = tasks[result.benchmark]
        rows = plan_rows = prepare(grid([task], (result.num_fewshot,))).examples[task.name]
        instances = build_instances(task, rows, result.num_fewshot)
        encoded = encode_task(task, rows, instances, lm.tokenizer, lm.max_length)
        per_example = [
            json.loads(line)
            for line in (
                tmp_path / "examples" / task.name / f"{result.num_fewshot}shot.{result.config_key}.jsonl"
            )
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


def test_generation_exact_match_is_wired_through(lm, tasks, tmp_path):
    plan = prepare(grid([tasks["tiny_gen"]], (0,)), per_example=True)
    outputs = [[" in France\nQuestion: next"], [" The answer is 42"], [" mat"]]
    summary = run_checkpoint(lm, CannedEngine(outputs), plan, tmp_path, checkpoint="ck")
    result = summary.results[0]
    assert result.metric == "exact_match" and result.n == 3
    assert result.accuracy == pytest.approx(
        2 / 3
    )  # alias match and "mat"; "The answer is 42" is not a prefix match


def _code_task(tmp_path, language="python"):
    rows = [
        {"task_id": "p/0", "prompt": "def add(a, b):\n", "entry_point": "add", "canonical_solution": "    return a + b\n",
         "test": "", "test_inputs": ["(1, 2)", "(2, 2)"], "test_outputs": ["3", "4"], "language": "python"},
        {"task_id": "p/1", "prompt": "def neg(a):\n", "entry_point": "neg", "canonical_solution": "    return -a\n",
         "test": "", "test_inputs": ["(1,)"], "test_outputs": ["-1"], "language": language},
    ]  # fmt: skip
    (tmp_path / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n- {name: tiny_code, category: toy, task_type: code_evaluation, data_file: code.jsonl,\n"
        "   pass_at_k: 1, generations_per_sample: 2, max_new_tokens: 8}\n"
    )
    [task] = load_task_file(tmp_path / "tasks.yaml")
    return task


def test_code_pass_at_k_runs_completions_in_the_sandbox(lm, tmp_path):
    from benchcal_eval.sandbox import isolation

    task = _code_task(tmp_path)
    outputs = [
        ["    return a + b\n", "    return a * b\n"],
        ["    while True:\n        pass\n", "    return -a\n"],
    ]
    plan = prepare(grid([task], (0,)), per_example=True, sandbox=Limits(timeout_s=2.0, memory_mb=512))
    summary = run_checkpoint(lm, CannedEngine(outputs), plan, tmp_path / "out", checkpoint="ck")
    result = summary.results[0]
    assert result.metric == "pass@1" and result.accuracy == pytest.approx(0.5)  # 1/2 on each problem
    assert result.sandbox == isolation().record()  # how the samples ran, in the result itself
    per_example = [
        json.loads(x)
        for x in (tmp_path / f"out/examples/tiny_code/0shot.{result.config_key}.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [r["passed"] for r in per_example] == [1, 1]
    assert per_example[1]["samples"][0]["result"].startswith("timeout")


def test_a_missing_toolchain_fails_the_pair_and_never_scores(lm, tasks, tmp_path, monkeypatch):
    task = _code_task(tmp_path, language="c++")
    monkeypatch.setenv("PATH", "/nonexistent")
    engine = CountingEngine(lm)
    plan = prepare(grid([task, tasks["tiny_mc"]], (0,)))
    summary = run_checkpoint(lm, engine, plan, tmp_path / "out", checkpoint="ck")
    assert [f.benchmark for f in summary.failures] == ["tiny_code"]
    assert "g++ not found" in summary.failures[0].error
    assert [r.benchmark for r in summary.results] == ["tiny_mc"]  # the other pair still ran
    assert not (tmp_path / "out" / "results" / "tiny_code").exists()  # no result file: nothing to resume
    assert engine.calls == [18]  # nothing was generated for the code pair


# ---- continuous metrics, majority rate, category counts -------------------------------------------


def _scored_text(lm, text: str) -> str:
    from benchcal_eval.tokenize import needs_prefix_space

    return f" {text}" if needs_prefix_space(lm.tokenizer) and not text.startswith(" ") else text


def test_continuous_metrics_match_a_hand_computation_on_the_reference(lm, tasks, tmp_path):
    """Per example: gold_prob, gold_margin and bits_per_byte from one-request-at-a-time HF forwards."""
    import math

    from benchcal_eval.engine import naive_score
    from benchcal_eval.prompts import build_instances
    from benchcal_eval.tokenize import encode_task

    summary, _ = run_pairs(lm, tasks, SCORED, (0,), tmp_path, per_example=True)
    for result in summary.results:
        task = tasks[result.benchmark]
        rows = prepare(grid([task], (0,))).examples[task.name]
        instances = build_instances(task, rows, 0)
        encoded = encode_task(task, rows, instances, lm.tokenizer, lm.max_length)
        lines = examples_path(tmp_path, task.name, 0, result.config_key).read_text().splitlines()
        probs, bpbs, margins = [], [], []
        for inst, enc, line in zip(instances, encoded, lines, strict=True):
            got = json.loads(line)
            ref = naive_score(lm.model, enc.requests, lm.max_length)
            gold = 0 if task.task_type == "language_modeling" else inst.gold
            text = _scored_text(lm, inst.continuations[0 if task.task_type == "schema" else gold])
            # the byte count is that of the text whose tokens were scored
            assert lm.tokenizer.decode(list(enc.requests[gold].continuation)) == text
            bpb = -ref[gold].logprob / (math.log(2) * len(text.encode("utf-8")))
            if task.task_type == "language_modeling":
                prob = math.exp(ref[0].logprob)
                assert "gold_margin" not in got
            else:
                mean = [r.logprob / r.n_tokens for r in ref]
                prob = math.exp(mean[gold]) / sum(math.exp(m) for m in mean)
                margin = mean[gold] - max(m for i, m in enumerate(mean) if i != gold)
                assert got["gold_margin"] == pytest.approx(margin, abs=1e-4)
                assert (got["gold_margin"] > 0) == got["correct"] or got["gold_margin"] == 0
                margins.append(got["gold_margin"])
            assert got["gold_prob"] == pytest.approx(prob, rel=1e-3)
            assert got["bits_per_byte"] == pytest.approx(bpb, rel=1e-4)
            probs.append(got["gold_prob"])
            bpbs.append(got["bits_per_byte"])
        m = result.metrics
        assert m["gold_prob"] == pytest.approx(sum(probs) / len(probs))
        assert m["bits_per_byte"] == pytest.approx(sum(bpbs) / len(bpbs))
        mu = sum(bpbs) / len(bpbs)
        sd = math.sqrt(sum((b - mu) ** 2 for b in bpbs) / (len(bpbs) - 1))
        assert m["bits_per_byte_stderr"] == pytest.approx(sd / math.sqrt(len(bpbs)))
        if margins:
            assert m["gold_margin"] == pytest.approx(sum(margins) / len(margins))
            assert m["gold_margin_stderr"] > 0
        else:
            assert "gold_margin" not in m
        assert "majority_rate" not in m  # the tiny tasks' options differ from example to example


def test_macro_averaged_task_writes_category_counts_and_majority_rate(lm, tmp_path):
    rows = [
        {"query": f"Question: {q}?", "choices": ["no", "yes"], "gold": g, "category": c}
        for q, g, c in [
            ("is the cat on the mat", 1, "animals"), ("is a dog red", 0, "animals"),
            ("is paris in france", 1, "places"), ("is the park blue", 0, "places"), ("is one two", 1, "places"),
        ]
    ]  # fmt: skip
    (tmp_path / "yn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n- {name: tiny_yn, category: toy, task_type: multiple_choice, data_file: yn.jsonl,\n"
        "   random_baseline: 0.5, has_categories: true}\n"
    )
    [task] = load_task_file(tmp_path / "tasks.yaml")
    summary = run_checkpoint(
        lm, CountingEngine(lm), prepare(grid([task], (0,))), tmp_path / "out", checkpoint="ck"
    )
    [result] = summary.results
    counts = result.category_counts
    assert set(counts) == {"animals", "places"} and counts["animals"]["n"] == 2 and counts["places"]["n"] == 3
    accs = [c["correct"] / c["n"] for c in counts.values()]
    assert result.accuracy == pytest.approx(sum(accs) / 2)
    unbiased = [a * (1 - a) / (c["n"] - 1) for a, c in zip(accs, counts.values(), strict=True)]
    assert result.stderr == pytest.approx(math.sqrt(sum(unbiased)) / 2)
    # "always yes": 1/2 on animals, 2/3 on places -> 7/12 macro; "always no": 5/12
    assert result.metrics["majority_rate"] == pytest.approx(7 / 12)
    stored = json.loads(result_path(tmp_path / "out", "tiny_yn", 0, result.config_key).read_text())
    assert (
        stored["category_counts"] == counts
        and read_summary(tmp_path / "out").results[0].category_counts == counts
    )
