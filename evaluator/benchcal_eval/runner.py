"""Evaluate one checkpoint on every (benchmark, shot count) pair of its plan, resumably.

Flow: every pending pair's examples -> instances -> token requests first; then all scored pairs
(language modeling, multiple choice, schema) go to the engine in **one** ``score_groups`` pass, so
each token prefix shared anywhere in the checkpoint (few-shot blocks across shot counts, questions
asked at several shot counts, schema contexts) is computed once; each pair's ``TaskResult`` is
written atomically from ``on_done`` as soon as its last request is scored. Generation pairs run
one at a time after that. A re-run skips every pair that has a result under the key it asks for
(``benchcal_eval.resume``), and the model is loaded only when some pair is left to compute. One
failing pair (a code benchmark whose toolchain is missing included) is recorded in the summary's
``failures`` and the others continue. Whole-run problems (unknown task, bad shots, malformed data)
are ``BadInput`` raised by ``plan.prepare`` before the model does any work. The summary covers
exactly the plan's pairs, in plan order: one call evaluates a whole checkpoint.

One pair's prompts, key and result: ``benchcal_eval.pairs``; the bookkeeping and the one scored
pass: ``benchcal_eval.scored_pass``; this module decides which pairs run and writes the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from benchcal.results import CheckpointSummary, write_summary
from benchcal.storage import Location
from benchcal.tasks.registry import TaskSpec
from benchcal_eval.pairs import SCORED_TYPES, PreparedPair, generated_output, pair_key, prepare_pair
from benchcal_eval.plan import RunPlan
from benchcal_eval.progress import NoProgress, Progress
from benchcal_eval.resume import finished_result
from benchcal_eval.scored_pass import CheckpointBook, score_in_one_pass

log = logging.getLogger("benchcal.evaluate")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CheckpointModel:
    """A checkpoint's model as the runner needs it: its resume key and record at once, its weights
    (``load() -> (lm, engine)``) only when a pair is left to compute, at most once."""

    key: dict[str, Any]  # ModelIdentity.key(dtype): the model part of every config_key
    record: dict[str, Any]  # the summary's ``model``
    load: Callable[[], tuple[Any, Any]]
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)

    @classmethod
    def loaded(cls, lm: Any, engine: Any) -> CheckpointModel:
        return cls(dict(lm.key), dict(lm.identity), lambda: (lm, engine))

    def get(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = self.load()
        return self._loaded


def run_checkpoint(
    lm: Any,
    engine: Any,
    plan: RunPlan,
    out_dir: Location,
    *,
    checkpoint: str,
    flops: float | None = None,
    progress: Progress | None = None,
) -> CheckpointSummary:
    """``evaluate_checkpoint`` with a model already loaded."""
    return evaluate_checkpoint(
        CheckpointModel.loaded(lm, engine),
        plan,
        out_dir,
        checkpoint=checkpoint,
        flops=flops,
        progress=progress,
    )


def evaluate_checkpoint(
    model: CheckpointModel,
    plan: RunPlan,
    out_dir: Location,
    *,
    checkpoint: str,
    flops: float | None = None,
    progress: Progress | None = None,
) -> CheckpointSummary:
    """Evaluate every pair of ``plan`` (skipping finished ones unless ``plan.overwrite``), then
    write ``summary.json``. A finished result is replaced only with ``plan.overwrite``."""
    progress = progress or NoProgress()
    summary = CheckpointSummary(
        checkpoint=checkpoint, model=dict(model.record), flops=flops, started_at=_now()
    )
    book = CheckpointBook(plan, out_dir, summary)
    pending: list[tuple[TaskSpec, int, str]] = []
    for task, k in plan.pairs:
        key = pair_key(model.key, task, k, plan)
        done = None if plan.overwrite else finished_result(out_dir, task, k, key)
        if done is not None:
            log.info(
                "%s: already done (%s %.4f, key %s), skipping", book.tag(task.name, k), done.metric, done.accuracy, key
            )  # fmt: skip
            book.results[(task.name, k)] = done
            progress.skip(f"{task.name} {k}-shot")
            continue
        pending.append((task, k, key))
    scored: list[PreparedPair] = []
    generated: list[PreparedPair] = []
    if pending:
        lm, engine = model.get()  # a model that cannot load fails the whole call (BadInput: exit 2)
        summary.model = dict(lm.identity)
        for task, k, key in pending:
            try:
                pair = prepare_pair(lm, task, k, plan, key)
            except Exception as exc:  # one pair's failure must not lose the others
                book.fail(task.name, k, exc)
                continue
            (scored if task.task_type in SCORED_TYPES else generated).append(pair)
        score_in_one_pass(engine, scored, book, progress)
        summary.requests_scored = sum(len(p.requests) for p in scored)
        for pair in generated:
            log.info("%s: evaluating (key %s)", book.tag(pair.task.name, pair.num_fewshot), pair.key)
            try:
                book.write(generated_output(pair, engine, plan, progress))
            except Exception as exc:
                book.fail(pair.task.name, pair.num_fewshot, exc)
    summary.results = [book.results[(t.name, k)] for t, k in plan.pairs if (t.name, k) in book.results]
    summary.pairs_resumed, summary.pairs_computed = len(plan.pairs) - len(pending), len(pending)
    summary.finished_at = _now()
    write_summary(out_dir, summary)
    return summary
