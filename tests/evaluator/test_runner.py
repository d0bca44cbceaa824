"""The evaluation runner on a tiny random Llama: correct wiring, resume, failure isolation."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from benchcal.results import examples_path, read_summary, result_path
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
        self.calls: list[int] = []  # requests per engine call (a scoring pass or one generation pair)
        self.passes: list[list[int]] = []  # per scoring pass: requests per pair

    @property
    def stats(self) -> EngineStats:
        return self.inner.stats

    def score_groups(self, groups, *, progress=None, on_done=None):
        self.calls.append(sum(len(g) for g in groups))
        self.passes.append([len(g) for g in groups])
        return self.inner.score_groups(groups, progress=progress, on_done=on_done)

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


def test_resume_skips_finished_pairs_and_keeps_their_results(lm, tasks, tmp_path):
    # "Interrupted" run: only one pair finished.
    _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    [first] = read_summary(tmp_path).results
    done_file = result_path(tmp_path, "tiny_mc", 0, first.config_key)
    before = done_file.read_bytes()
    summary, second = _run(lm, tasks, SCORED, (0, 1), tmp_path)
    assert done_file.read_bytes() == before  # not rewritten
    assert len(second.passes) == 1 and len(second.passes[0]) == 5  # six pairs, one skipped, five in one pass
    assert len(summary.results) == 6 and not summary.failures
    # the summary says what this call did: what a grown CalibrationRun's e2e test counts
    assert (summary.pairs_resumed, summary.pairs_computed) == (1, 5)
    assert summary.requests_scored == second.calls[0] == read_summary(tmp_path).requests_scored
    # Same numbers as an uninterrupted run.
    fresh, _ = _run(lm, tasks, SCORED, (0, 1), tmp_path / "fresh")
    key = lambda r: (r.benchmark, r.num_fewshot)  # noqa: E731
    got = {key(r): (r.accuracy, r.n, r.config_key) for r in summary.results}
    want = {key(r): (r.accuracy, r.n, r.config_key) for r in fresh.results}
    assert got == want
    # A third run does nothing at all.
    again, third = _run(lm, tasks, SCORED, (0, 1), tmp_path)
    assert third.calls == [] and (again.pairs_resumed, again.pairs_computed, again.requests_scored) == (
        6,
        0,
        0,
    )


def test_changed_config_recomputes_the_pair_and_keeps_the_other(lm, tasks, tmp_path):
    full, _ = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    summary, engine = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path, limit=2)
    assert engine.calls == [6]  # 2 examples x 3 choices, recomputed
    assert summary.results[0].n == 2
    smoke_key, full_key = summary.results[0].config_key, full.results[0].config_key
    assert smoke_key != full_key
    assert json.loads(result_path(tmp_path, "tiny_mc", 0, smoke_key).read_text())["n"] == 2
    assert json.loads(result_path(tmp_path, "tiny_mc", 0, full_key).read_text())["n"] == 6  # still there


def test_a_smoke_run_leaves_the_full_results_intact(lm, tasks, tmp_path):
    full, _ = _run(lm, tasks, SCORED, (0, 1), tmp_path, per_example=True)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*.json*") if p.name != "summary.json"}
    smoke, _ = _run(lm, tasks, SCORED, (0, 1), tmp_path, limit=2)  # --limit 2 into the same directory
    assert all(r.n <= 2 for r in smoke.results) and read_summary(tmp_path).results == smoke.results
    assert all(p.read_bytes() == data for p, data in files.items())  # nothing finished was touched
    again, engine = _run(lm, tasks, SCORED, (0, 1), tmp_path)  # the full configuration again
    assert engine.calls == []  # every pair reused, nothing recomputed
    assert read_summary(tmp_path).results == again.results == full.results


def test_overwrite_replaces_only_results_of_its_own_key(lm, tasks, tmp_path):
    smoke, _ = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path, limit=2)
    full, _ = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path)
    smoke_file = result_path(tmp_path, "tiny_mc", 0, smoke.results[0].config_key)
    full_file = result_path(tmp_path, "tiny_mc", 0, full.results[0].config_key)
    smoke_bytes, full_before = smoke_file.read_bytes(), json.loads(full_file.read_text())
    _, engine = _run(lm, tasks, ["tiny_mc"], (0,), tmp_path, overwrite=True)
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

    summary, _ = _run(lm, tasks, SCORED, (0,), tmp_path, per_example=True)
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


def test_the_new_metrics_cost_no_extra_forward_pass(lm, tasks, tmp_path):
    """Model calls counted with forward hooks: the decoder body runs exactly once per batch of the
    one scoring pass, and the full model (an extra forward of its own) never."""
    calls = {"body": 0, "full": 0}
    engine = CountingEngine(lm)
    hooks = [
        engine.inner.body.register_forward_hook(lambda *_: calls.__setitem__("body", calls["body"] + 1)),
        lm.model.register_forward_hook(lambda *_: calls.__setitem__("full", calls["full"] + 1)),
    ]
    try:
        plan = prepare(grid([tasks[n] for n in SCORED], (0, 1)))
        summary = run_checkpoint(lm, engine, plan, tmp_path, checkpoint="ck")
    finally:
        for h in hooks:
            h.remove()
    assert not summary.failures and all("gold_prob" in r.metrics for r in summary.results)
    assert len(engine.passes) == 1 and len(engine.passes[0]) == len(plan.pairs)  # one pass, every pair
    assert engine.stats.batches > 0 and calls == {"body": engine.stats.batches, "full": 0}


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


def stored(out, name, k, must=True):
    """The one result file of a pair (named by its config key), or None when ``must`` is False."""
    found = [p for p in (out / "results" / name).glob(f"{k}shot*.json") if p.name.split(".")[0] == f"{k}shot"]
    assert len(found) <= 1, found
    if must:
        assert found, f"no result for {name} {k}-shot"
    return found[0] if found else None


class InterruptingEngine(CountingEngine):
    """Reports each finished pair to the runner, then stops the process-like pass after ``after``."""

    def __init__(self, lm, after, exc):
        super().__init__(lm)
        self.after, self.exc, self.seen = after, exc, []

    def score_groups(self, groups, *, progress=None, on_done=None):
        def wrapped(g, results):
            on_done(g, results)
            self.seen.append(g)
            if len(self.seen) == self.after:
                raise self.exc

        return super().score_groups(groups, progress=progress, on_done=wrapped)


def test_one_pass_computes_shared_prefixes_once_and_writes_each_pair_when_done(lm, tasks, tmp_path):
    # nested sampling: the 3-shot prompt of a question starts with its 1-shot prompt's example
    pairs = grid([tasks["tiny_mc"], tasks["tiny_schema"]], (1, 3))
    written = []

    class Watching(CountingEngine):
        def score_groups(self, groups, *, progress=None, on_done=None):
            def wrapped(g, results):
                on_done(g, results)
                written.append(sorted(str(p) for p in (tmp_path / "one").rglob("*shot*.json")))

            return super().score_groups(groups, progress=progress, on_done=wrapped)

    engine = Watching(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path / "one", checkpoint="ck")
    assert not summary.failures and len(engine.passes) == 1 and len(engine.passes[0]) == 4
    assert [len(w) for w in written] == [1, 2, 3, 4]  # each file appears as its pair completes
    separate = 0
    for task, k in pairs:
        e = CountingEngine(lm)
        alone = run_checkpoint(lm, e, prepare([(task, k)]), tmp_path / f"{task.name}{k}", checkpoint="ck")
        separate += e.stats.computed_tokens
        mine = next(r for r in summary.results if (r.benchmark, r.num_fewshot) == (task.name, k))
        assert mine.accuracy == alone.results[0].accuracy and mine.config_key == alone.results[0].config_key
    assert engine.stats.computed_tokens < separate  # prefixes shared across pairs computed once
    # costs are attributed in completion order and add up to the pass
    assert sum(r.tokens_scored for r in summary.results) == engine.stats.computed_tokens


def test_a_run_killed_mid_pass_keeps_the_finished_pairs_and_resumes_the_rest(lm, tasks, tmp_path):
    pairs = grid([tasks["tiny_mc"], tasks["tiny_lm"], tasks["tiny_schema"]], (0, 1))
    killed = InterruptingEngine(lm, after=2, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_checkpoint(lm, killed, prepare(pairs), tmp_path, checkpoint="ck")
    kept = {(t.name, k): stored(tmp_path, t.name, k).read_bytes() for t, k in pairs[:2]}
    assert not any(stored(tmp_path, t.name, k, must=False) for t, k in pairs[2:])
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert len(engine.passes) == 1 and len(engine.passes[0]) == 4  # only the four unfinished pairs
    assert all(stored(tmp_path, *key).read_bytes() == data for key, data in kept.items())
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [(t.name, k) for t, k in pairs]


def test_a_failed_pass_fails_exactly_the_pairs_it_had_not_finished(lm, tasks, tmp_path):
    pairs = grid([tasks["tiny_mc"], tasks["tiny_schema"]], (0, 1))
    engine = InterruptingEngine(lm, after=1, exc=RuntimeError("device lost"))
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [("tiny_mc", 0)]
    assert [(f.benchmark, f.num_fewshot) for f in summary.failures] == [(t.name, k) for t, k in pairs[1:]]
    assert all("device lost" in f.error for f in summary.failures)
    assert not stored(tmp_path, "tiny_schema", 0, must=False)
