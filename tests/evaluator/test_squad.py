"""SQuAD (rebuilt from the official v1.1 dev set, shipped in the package): registry entry, the
prompts the real builder makes from it, their tokens, and a few rows through `benchcal evaluate`.

The reference row is the first question of the SQuAD v1.1 dev set in llm-foundry's layout
(../shared/gauntlet/REBUILT.md): ``{"context": "Context: <paragraph>\\nQuestion: <question>\\nAnswer: ",
"continuation": <first answer>}``; prompts follow ../shared/reference/icl_metrics.md section 2.
"""

from __future__ import annotations

import pytest

from benchcal.app.cli import main
from benchcal.results import read_summary
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import get_task, preset_shots
from benchcal_eval.prompts import build_instances
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir

PARAGRAPH_START = "Super Bowl 50 was an American football game to determine the champion of the National"
QUESTION = "Which NFL team represented the AFC at Super Bowl 50?"
ANSWER = "Denver Broncos"


@pytest.fixture(scope="module")
def squad():
    task = get_task("squad")
    return task, load_examples(task)


def test_registry_entry_matches_the_gauntlet_tables(squad):
    task, rows = squad
    assert (task.category, task.task_type, task.random_baseline) == (
        "reading_comprehension",
        "language_modeling",
        0.0,
    )
    assert task.shots == {"v0.1": 10, "v0.2": 3, "v0.3": 3}
    assert (task.continuation_delimiter, task.example_delimiter, task.prompt_string) == (" ", "\n", "")
    assert all(preset_shots(f"gauntlet-v0.{v}")["squad"] == n for v, n in ((1, 10), (2, 3), (3, 3)))
    assert len(rows) == 10570


def test_reference_row_zero_shot(squad):
    task, rows = squad
    (inst,) = build_instances(task, rows, 0, limit=1)
    (context,) = inst.contexts
    assert context.startswith(f"Context: {PARAGRAPH_START}")
    assert context.endswith(f"\nQuestion: {QUESTION}\nAnswer:")  # the stored trailing space stripped
    assert context.count("\n") == 2 and inst.continuations == (ANSWER,) and inst.preamble == ""


def test_three_shot_layout_and_continuations_occur_in_their_contexts(squad):
    task, rows = squad
    instances = build_instances(task, rows, 3, limit=4)
    assert [i.index for i in instances] == [0, 1, 2, 3]
    for inst in instances:
        shots = inst.fewshot_indices
        assert len(set(shots)) == 3 and inst.index not in shots
        # the layout written out by hand from the rule: shots "<context> <answer>" joined by "\n",
        # then "\n" + the test context right-stripped
        expected = "\n".join(f"{rows[j]['context']} {rows[j]['continuation']}" for j in shots)
        expected += "\n" + rows[inst.index]["context"].rstrip()
        assert inst.contexts == (expected,)
        assert inst.continuations == (rows[inst.index]["continuation"],)
        assert inst.contexts[0].count("\nQuestion: ") == 4 and inst.contexts[0].count("Context: ") >= 4
    assert instances[0].contexts[0].endswith(f"\nQuestion: {QUESTION}\nAnswer:")
    # SQuAD's answers are spans of the paragraph
    assert all(r["continuation"] in r["context"] for r in rows[:200])


def test_smollm2_tokens_of_the_reference_row(squad):
    from benchcal_eval.tokenize import encode_instance
    from tests.models import smollm2_tokenizer

    tok = smollm2_tokenizer()
    task, rows = squad
    (inst,) = build_instances(task, rows, 0, limit=1)
    (req,) = encode_instance(inst, tok, 2048).requests
    assert tok.decode(list(req.continuation)) == f" {ANSWER}"  # the prefix space of a BPE tokenizer
    assert tok.decode(list(req.context)).endswith(f"{QUESTION}\nAnswer:")


def test_a_few_rows_through_benchcal_evaluate(tmp_path):
    argv = ["evaluate", "--model", str(tiny_checkpoint_dir()), "--tasks", "squad", "--shots", "0,3",
            "--limit", "4", "--out", str(tmp_path), "--device", "cpu", "--checkpoint", "tiny"]  # fmt: skip
    assert main(argv) == 0
    results = {r.num_fewshot: r for r in read_summary(tmp_path).results}
    assert sorted(results) == [0, 3]
    for r in results.values():
        assert (r.benchmark, r.category, r.task_type, r.n) == (
            "squad",
            "reading_comprehension",
            "language_modeling",
            4,
        )
        assert r.metric == "acc" and 0.0 <= r.accuracy <= 1.0 and r.tokens_scored > 0
