"""Prompt building: expected strings written by hand from llm-foundry's rules, on tiny inline data.

With N rows and k = N-1 shots every other row is a shot, and a Python set of small ints iterates
in ascending order, so the expected few-shot order can be written down without running the RNG.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from benchcal.errors import BadInput
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import get_task
from benchcal_eval.prompts import build_instances, fewshot_indices
from tests.evaluator.task_specs import spec

LM_ROWS = [
    {"context": "2+2=", "continuation": "4"},
    {"context": "3+3=", "continuation": "6"},
    {"context": "1+1=", "continuation": "2"},
]


def test_language_modeling_zero_shot_is_the_bare_context_with_stripped_delimiter():
    task = spec("language_modeling", continuation_delimiter="\nAnswer: ")
    inst = build_instances(task, LM_ROWS, 0)
    assert [i.contexts for i in inst] == [("2+2=\nAnswer:",), ("3+3=\nAnswer:",), ("1+1=\nAnswer:",)]
    assert inst[0].continuations == ("4",)
    assert inst[0].preamble == "" and inst[0].fewshot_indices == ()


def test_language_modeling_few_shot_layout():
    task = spec("language_modeling", continuation_delimiter="\nAnswer: ", prompt_string="Add:")
    inst = build_instances(task, LM_ROWS, 2)
    # prompt_string, then each shot preceded by "\n" (text before it is non-empty); shots keep the
    # unstripped delimiter and their answer; the test context ends in the right-stripped delimiter.
    assert inst[0].contexts == ("Add:\n3+3=\nAnswer: 6\n1+1=\nAnswer: 2\n2+2=\nAnswer:",)
    assert inst[0].preamble == "Add:\n3+3=\nAnswer: 6\n1+1=\nAnswer: 2"
    assert inst[1].contexts == ("Add:\n2+2=\nAnswer: 4\n1+1=\nAnswer: 2\n3+3=\nAnswer:",)
    assert inst[2].contexts == ("Add:\n2+2=\nAnswer: 4\n3+3=\nAnswer: 6\n1+1=\nAnswer:",)
    assert [i.fewshot_indices for i in inst] == [(1, 2), (0, 2), (0, 1)]


def test_language_modeling_without_prompt_string_has_no_leading_delimiter():
    inst = build_instances(spec("language_modeling"), LM_ROWS, 2)
    assert inst[2].contexts == ("2+2= 4\n3+3= 6\n1+1=",)


MC_ROWS = [
    {"query": "Sky colour?", "choices": ["blue", "green"], "gold": 0},
    {"query": "Grass colour?", "choices": ["red", "green"], "gold": 1},
    {"query": "Snow colour?", "choices": ["white", "black"], "gold": 0},
]


def test_multiple_choice_prompt_uses_gold_choice_in_shots():
    task = spec("multiple_choice", continuation_delimiter="\nAnswer: ")
    inst = build_instances(task, MC_ROWS, 2)
    assert inst[1].contexts == (
        "Sky colour?\nAnswer: blue\nSnow colour?\nAnswer: white\nGrass colour?\nAnswer:",
    )
    assert inst[1].continuations == ("red", "green")
    assert inst[1].gold == 1


SCHEMA_ROWS = [
    {
        "context_options": ["Ann hid because Ann", "Ann hid because Bob"],
        "continuation": "was scared.",
        "gold": 0,
    },
    {
        "context_options": ["The cup fell so the cup", "The cup fell so the floor"],
        "continuation": "broke.",
        "gold": 0,
    },
    {"context_options": ["Tom beat Ed so Tom", "Tom beat Ed so Ed"], "continuation": "was sad.", "gold": 1},
]


def test_schema_zero_shot_contexts_are_the_bare_options():
    inst = build_instances(spec("schema"), SCHEMA_ROWS, 0)
    assert inst[0].contexts == ("Ann hid because Ann", "Ann hid because Bob")
    assert inst[0].continuations == ("was scared.",)


def test_schema_few_shot_uses_gold_context_and_stripped_delimiter_for_options():
    task = spec("schema", continuation_delimiter=" => ")
    inst = build_instances(task, SCHEMA_ROWS, 2)
    preamble = "Ann hid because Ann => was scared.\nThe cup fell so the cup => broke."
    assert inst[2].contexts == (
        preamble + "\nTom beat Ed so Tom =>",
        preamble + "\nTom beat Ed so Ed =>",
    )
    assert inst[2].preamble == preamble and inst[2].gold == 1


COT_ROWS = [
    {"context": "2 apples + 3 apples?", "chain_of_thought": "2 + 3 = 5.", "answer": "5"},
    {"context": "4 pears - 1 pear?", "chain_of_thought": "4 - 1 = 3.", "answer": "3", "aliases": ["three"]},
]


def test_generation_chain_of_thought_layout():
    task = spec("generation_task_with_answers", question_prelimiter="Q: ",
                continuation_delimiter="\nA: Let's think step by step. ", cot_delimiter=" #### ")  # fmt: skip
    inst = build_instances(task, COT_ROWS, 1)
    assert inst[1].contexts == (
        "Q: 2 apples + 3 apples?\nA: Let's think step by step. 2 + 3 = 5. #### 5"
        "\nQ: 4 pears - 1 pear?\nA: Let's think step by step.",
    )
    assert inst[1].answers == ("3", "three")
    assert inst[1].cot_delimiter == " #### "


def test_generation_carries_stop_strings_and_deduplicated_answers():
    rows = [
        {"context": "Question: Capital of France?\nAnswer:", "answer": "Paris", "aliases": ["Paris", "paris"]}
    ]
    task = spec("generation_task_with_answers", stop=("\n\n",))
    (inst,) = build_instances(task, rows, 0)
    assert inst.contexts == ("Question: Capital of France?\nAnswer:",)
    assert inst.answers == ("Paris", "paris") and inst.stop == ("\n\n",)


CODE_ROWS = [
    {"task_id": "T/0", "prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "entry_point": "add",
     "canonical_solution": "    return a + b\n", "test": "", "test_inputs": ["(1, 2)"],
     "test_outputs": ["3"], "language": "python"},
    {"task_id": "T/1", "prompt": "def neg(a):\n", "entry_point": "neg",
     "canonical_solution": "    return -a\n", "test": "", "test_inputs": ["(1,)"],
     "test_outputs": ["-1"], "language": "python"},
]  # fmt: skip


def test_code_prompt_is_kept_verbatim_and_shots_append_the_solution():
    (zero, _) = build_instances(spec("code_evaluation"), CODE_ROWS, 0)
    assert zero.contexts == ('def add(a, b):\n    """Add."""\n',)  # trailing newline kept
    assert zero.code is not None and zero.code.entry_point == "add" and zero.code.test_outputs == ("3",)
    (_, one) = build_instances(spec("code_evaluation"), CODE_ROWS, 1)
    assert one.contexts == ('def add(a, b):\n    """Add."""\n    return a + b\n\ndef neg(a):\n',)


CAT_ROWS = [
    {"context": "a1", "continuation": "x", "category": "alpha"},
    {"context": "b1", "continuation": "y", "category": "beta"},
    {"context": "a2", "continuation": "x", "category": "alpha"},
    {"context": "b2", "continuation": "y", "category": "beta"},
    {"context": "a3", "continuation": "x", "category": "alpha"},
]


def test_categories_draw_shots_only_from_their_own_category():
    task = spec("language_modeling", has_categories=True)
    inst = build_instances(task, CAT_ROWS, 5)
    by_index = {i.index: i for i in inst}
    assert [i.index for i in inst] == [0, 1, 2, 3, 4]  # file order
    assert by_index[0].contexts == ("a2 x\na3 x\na1",)
    assert by_index[3].contexts == ("b1 y\nb2",)
    assert by_index[3].category == "beta" and by_index[3].fewshot_indices == (1,)


def test_limit_takes_rows_round_robin_over_categories_with_unchanged_prompts():
    task = spec("language_modeling", has_categories=True)
    full = {i.index: i for i in build_instances(task, CAT_ROWS, 1)}
    limited = build_instances(task, CAT_ROWS, 1, limit=3)
    assert [i.index for i in limited] == [0, 1, 2]  # alpha[0], beta[0], alpha[1]
    assert all(i == full[i.index] for i in limited)


def _big_rows(n: int = 40) -> list[dict]:
    return [{"context": f"question {i}", "continuation": f"answer {i}"} for i in range(n)]


def test_same_seed_gives_byte_identical_prompts_and_other_seeds_differ():
    task = spec("language_modeling")
    first = build_instances(task, _big_rows(), 5, seed=7)
    second = build_instances(task, _big_rows(), 5, seed=7)
    assert [i.contexts for i in first] == [i.contexts for i in second]
    assert [i.contexts for i in build_instances(task, _big_rows(), 5, seed=8)] != [i.contexts for i in first]
    default = build_instances(task, _big_rows(), 5)
    assert default == build_instances(task, _big_rows(), 5, seed=1234)


def test_shot_draws_exclude_the_example_and_are_distinct():
    rows = _big_rows(12)
    for inst in build_instances(spec("language_modeling"), rows, 10):
        assert inst.index not in inst.fewshot_indices
        assert len(set(inst.fewshot_indices)) == 10


def test_fewshot_indices_caps_at_pool_size_minus_one():
    assert fewshot_indices(3, 10, 1, random.Random(0)) == {0, 2}
    assert fewshot_indices(1, 3, 0, random.Random(0)) == set()


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_shot_count_is_bad_input(bad):
    with pytest.raises(BadInput, match="num_fewshot"):
        build_instances(spec("language_modeling"), LM_ROWS, bad)


def test_real_arc_easy_zero_shot_prompt():
    task = get_task("arc_easy")
    rows = load_examples(task)
    (inst,) = build_instances(task, rows, 0, limit=1)
    assert inst.contexts == (rows[0]["query"] + "\nAnswer:",)
    assert inst.continuations == tuple(rows[0]["choices"])


def test_shot_strings_are_unstripped_delimiters_from_the_registry():
    # gsm8k (v0.1/v0.2): prelimiter "Q: ", delimiter "\nA: Let's think step by step. ", cot " #### ".
    task = dataclasses.replace(get_task("gsm8k"), data_file="/nonexistent")
    (_, inst) = build_instances(task, COT_ROWS, 1)
    assert inst.preamble == "Q: 2 apples + 3 apples?\nA: Let's think step by step. 2 + 3 = 5. #### 5"
