"""Prompt text for every task type, following llm-foundry's in-context-learning rules exactly.

Pure functions on plain data: a ``TaskSpec``, the benchmark's rows (``load_examples``) and a shot
count in, ``Instance`` objects (strings only) out. Tokenisation is ``benchcal_eval.tokenize``.

The rules (see docs/tasks.md for the full statement and the deliberate differences):
- few-shot examples come from the same file (the example's own category pool for
  ``has_categories`` tasks), never the example itself. How they are drawn is ``sampling``:
  ``independent`` is llm-foundry's rule (one ``random.Random(seed)`` stream per (task, shot count,
  category) in file order, shots concatenated in the iteration order of the Python ``set`` holding
  the drawn indices); ``nested`` (default) gives each example one seeded random order of the other
  examples and the k-shot prompt takes its first k; ``fixed`` takes the first k of one seeded
  order per pool for every example (skipping the example itself);
- preamble = prompt_string + for each shot ``[example_delimiter if text so far] + prelimiter +
  context + continuation_delimiter + answer``; the test context is built the same way without the
  answer and right-stripped (so ``"\\nAnswer: "`` ends the prompt as ``"\\nAnswer:"``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from benchcal.errors import BadInput
from benchcal.tasks.registry import TaskSpec
from benchcal_eval.requests import CodeSpec, Instance

_CONTEXT_KEY = {
    "language_modeling": "context",
    "multiple_choice": "query",
    "generation_task_with_answers": "context",
    "code_evaluation": "prompt",
}


def fewshot_indices(n: int, num_fewshot: int, example_idx: int, rng: random.Random) -> set[int]:
    """Indices of the shots for one example; the same draws, in the same order, as llm-foundry."""
    k = min(n - 1, num_fewshot)
    chosen = set(rng.sample(range(n), k))
    if example_idx in chosen:
        chosen.remove(example_idx)
        if len(chosen) >= n - 1:
            return chosen
        replacement = rng.choice(range(n))
        while replacement in chosen or replacement == example_idx:
            replacement = rng.choice(range(n))
        chosen.add(replacement)
    return chosen


SAMPLING = ("nested", "independent", "fixed")
DEFAULT_SAMPLING = "nested"


def _ordered_draws(n: int, count: int, exclude: int, rng: random.Random) -> list[int]:
    """The first ``count`` of a uniformly random order of ``range(n)`` without ``exclude``.

    Draws uniformly and rejects repeats, so each pick is uniform over what is left and the list for
    a larger ``count`` extends the one for a smaller ``count`` (the same RNG calls, in order).
    """
    count = min(count, n - (0 <= exclude < n))
    chosen: list[int] = []
    seen = {exclude}
    while len(chosen) < count:
        j = rng.randrange(n)
        if j not in seen:
            seen.add(j)
            chosen.append(j)
    return chosen


def nested_indices(n: int, num_fewshot: int, example_idx: int, seed: int, pool: str = "") -> list[int]:
    """``nested``: the first ``num_fewshot`` of the example's own seeded order of the others.

    The order depends only on (seed, pool, example), never on the shot count, so the k-shot
    shots are a prefix of the (k+1)-shot shots.
    """
    rng = random.Random(f"benchcal-nested/{seed}/{pool}/{example_idx}")
    return _ordered_draws(n, num_fewshot, example_idx, rng)


def fixed_indices(n: int, num_fewshot: int, example_idx: int, seed: int, pool: str = "") -> list[int]:
    """``fixed``: the first ``num_fewshot`` of one seeded order of the pool, the example skipped."""
    rng = random.Random(f"benchcal-fixed/{seed}/{pool}")
    order = _ordered_draws(n, num_fewshot + 1, -1, rng)
    return [j for j in order if j != example_idx][:num_fewshot]


def _partitions(task: TaskSpec, examples: Sequence[dict]) -> list[tuple[str | None, list[int]]]:
    """Row indices per few-shot pool: one pool, or one per category (sorted, as llm-foundry)."""
    if not task.has_categories:
        return [(None, list(range(len(examples))))]
    pools: dict[str, list[int]] = {}
    for i, row in enumerate(examples):
        pools.setdefault(row["category"], []).append(i)
    return [(cat, pools[cat]) for cat in sorted(pools)]


def _select(partitions: list[tuple[str | None, list[int]]], limit: int | None) -> set[int]:
    """The rows to evaluate: all, or the first ``limit`` taken round-robin over the categories."""
    total = sum(len(rows) for _, rows in partitions)
    if limit is None or limit >= total:
        return {i for _, rows in partitions for i in rows}
    chosen: set[int] = set()
    depth = 0
    while len(chosen) < limit:
        for _, rows in partitions:
            if depth < len(rows) and len(chosen) < limit:
                chosen.add(rows[depth])
        depth += 1
    return chosen


def _answer_in_context(task: TaskSpec, row: dict, has_cot: bool) -> str:
    """What follows a few-shot example's continuation delimiter."""
    if task.task_type == "language_modeling":
        return row["continuation"]
    if task.task_type == "multiple_choice":
        return row["choices"][row["gold"]]
    if task.task_type == "generation_task_with_answers":
        if has_cot:
            return f"{row['chain_of_thought']}{task.cot_delimiter}{row['answer']}"
        return row["answer"]
    return row["canonical_solution"]  # code_evaluation


def _shot_text(task: TaskSpec, row: dict, preceding: str, has_cot: bool) -> str:
    """One few-shot example as llm-foundry writes it after ``preceding``."""
    delimiter = task.example_delimiter if preceding else ""
    if task.task_type == "schema":
        # Schema puts the prelimiter before the delimiter (llm-foundry's order; both "" in the gauntlet).
        gold_context = row["context_options"][row["gold"]]
        return f"{task.question_prelimiter}{delimiter}{gold_context}{task.continuation_delimiter}{row['continuation']}"
    if task.task_type == "code_evaluation":
        # Code (composer 0.17): prompt + canonical solution, no continuation delimiter.
        return f"{delimiter}{task.question_prelimiter}{row['prompt']}{row['canonical_solution']}"
    body = f"{delimiter}{task.question_prelimiter}{row[_CONTEXT_KEY[task.task_type]]}{task.continuation_delimiter}"
    return body + _answer_in_context(task, row, has_cot)


def _test_contexts(task: TaskSpec, row: dict, preamble: str) -> tuple[str, ...]:
    """The test example's context(s), appended to the preamble."""
    delimiter = task.example_delimiter if preamble else ""
    if task.task_type == "schema":
        if preamble:
            tail = task.continuation_delimiter.rstrip()
            return tuple(
                f"{preamble}{task.question_prelimiter}{delimiter}{opt}{tail}"
                for opt in row["context_options"]
            )
        # 0-shot schema: the bare option, no delimiter at all (llm-foundry).
        return tuple(f"{task.question_prelimiter}{opt}" for opt in row["context_options"])
    if task.task_type == "code_evaluation":
        return (f"{preamble}{delimiter}{task.question_prelimiter}{row['prompt']}",)
    text = f"{delimiter}{task.question_prelimiter}{row[_CONTEXT_KEY[task.task_type]]}{task.continuation_delimiter}"
    # llm-foundry right-strips the test context: a prompt ending in a space degrades generations.
    return (preamble + text.rstrip(),)


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _instance(task: TaskSpec, index: int, row: dict, preamble: str, shots: tuple[int, ...]) -> Instance:
    contexts = _test_contexts(task, row, preamble)
    common: dict[str, Any] = {
        "index": index,
        "task_type": task.task_type,
        "contexts": contexts,
        "category": row.get("category") if task.has_categories else None,
        "fewshot_indices": shots,
        "preamble": preamble,
    }
    kind = task.task_type
    if kind == "language_modeling":
        return Instance(**common, continuations=(row["continuation"],))
    if kind == "multiple_choice":
        return Instance(**common, continuations=tuple(row["choices"]), gold=row["gold"])
    if kind == "schema":
        return Instance(**common, continuations=(row["continuation"],), gold=row["gold"])
    if kind == "generation_task_with_answers":
        answers = _unique([row["answer"], *row.get("aliases", [])])
        return Instance(**common, answers=answers, stop=task.stop, cot_delimiter=task.cot_delimiter)
    code = CodeSpec(
        task_id=row["task_id"],
        prompt=row["prompt"],
        entry_point=row["entry_point"],
        test=row["test"],
        test_inputs=tuple(row["test_inputs"]),
        test_outputs=tuple(row["test_outputs"]),
        language=row["language"],
    )
    return Instance(**common, code=code)


def build_instances(
    task: TaskSpec,
    examples: Sequence[dict],
    num_fewshot: int,
    *,
    seed: int | None = None,
    limit: int | None = None,
    sampling: str = DEFAULT_SAMPLING,
) -> list[Instance]:
    """One ``Instance`` per evaluated row, in file order.

    ``seed`` defaults to the task's ``fewshot_random_seed`` (1234). ``limit`` keeps the first rows
    (round-robin over categories for ``has_categories`` tasks); a limited run's prompts are
    byte-identical to the full run's (``independent`` draws for every row so its stream does not
    depend on ``limit``). ``sampling``: ``nested`` | ``independent`` | ``fixed`` (module docstring).
    """
    if isinstance(num_fewshot, bool) or not isinstance(num_fewshot, int) or num_fewshot < 0:
        raise BadInput(f"{task.name}: num_fewshot must be an integer >= 0, got {num_fewshot!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadInput(f"{task.name}: limit must be a positive integer, got {limit!r}")
    if not examples:
        raise BadInput(f"{task.name}: no examples to evaluate")
    if task.task_type not in (*_CONTEXT_KEY, "schema"):
        raise BadInput(f"{task.name}: unknown task_type {task.task_type!r}")
    if sampling not in SAMPLING:
        raise BadInput(
            f"{task.name}: few-shot sampling must be one of {', '.join(SAMPLING)}, got {sampling!r}"
        )
    seed = task.fewshot_random_seed if seed is None else seed
    has_cot = task.task_type == "generation_task_with_answers" and "chain_of_thought" in examples[0]
    partitions = _partitions(task, examples)
    selected = _select(partitions, limit)
    built: dict[int, Instance] = {}
    for category, rows in partitions:
        rng = random.Random(seed)  # independent: a fresh stream per category partition, as llm-foundry
        pool = category or ""
        for local, index in enumerate(rows):
            shots: tuple[int, ...] = ()
            if num_fewshot > 0 and sampling == "independent":
                # draw for every row: the RNG stream must not depend on `limit`
                drawn = fewshot_indices(len(rows), num_fewshot, local, rng)
                shots = tuple(rows[j] for j in drawn)  # set iteration order, as llm-foundry
            if index not in selected:
                continue
            if num_fewshot > 0 and sampling != "independent":
                pick = nested_indices if sampling == "nested" else fixed_indices
                shots = tuple(rows[j] for j in pick(len(rows), num_fewshot, local, seed, pool))
            preamble = task.prompt_string
            for j in shots:
                preamble += _shot_text(task, examples[j], preamble, has_cot)
            built[index] = _instance(task, index, examples[index], preamble, shots)
    return [built[i] for i in sorted(built)]
