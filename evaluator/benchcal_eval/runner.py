"""Evaluate one checkpoint on every (benchmark, shot count) pair of its plan, resumably.

Flow per pair: examples -> instances -> token requests -> engine -> per-example scores ->
``TaskResult``, written atomically as soon as the pair finishes, under its ``config_key``. A re-run
skips every pair that has a result under the key it asks for (``benchcal_eval.resume``), and the
model is loaded only when some pair is left to compute. One failing pair (a code benchmark whose
toolchain is missing included) is recorded in the summary's ``failures`` and the others continue.
Whole-run problems (unknown task, bad shots, malformed data) are ``BadInput`` raised by
``plan.prepare`` before the model does any work. The summary covers exactly the plan's pairs:
one call evaluates a whole checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from benchcal.results import (
    CheckpointSummary,
    Failure,
    TaskResult,
    atomic_write_text,
    examples_path,
    write_summary,
    write_task_result,
)
from benchcal.storage import Location
from benchcal.tasks.registry import TaskSpec
from benchcal_eval import metrics, sandbox
from benchcal_eval.plan import RunPlan
from benchcal_eval.prompts import build_instances
from benchcal_eval.requests import Instance
from benchcal_eval.resume import config_key, finished_result
from benchcal_eval.sandbox import Limits, check_completion, require_toolchain
from benchcal_eval.tokenize import encode_task

log = logging.getLogger("benchcal.evaluate")

SCORED_TYPES = ("language_modeling", "multiple_choice", "schema")


class Progress(Protocol):
    """Where the runner reports work: ``skip`` per pair resumed from disk, one ``start`` per pair
    evaluated, ``advance`` per finished request."""

    def skip(self, label: str) -> None: ...
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def skip(self, label: str) -> None:
        pass

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


# ---- one pair --------------------------------------------------------------------------------------


@dataclass
class PairOutput:
    result: TaskResult
    rows: list[dict[str, Any]]  # per-example records


def _score_pair(task, instances, encoded, engine, progress: Progress, label: str):
    requests = [r for e in encoded for r in e.requests]
    progress.start(label, len(requests))
    scores = engine.score(requests, progress=progress.advance)
    progress.finish()
    cats = [inst.category for inst in instances] if task.has_categories else None
    rows: list[dict[str, Any]] = []
    if task.task_type == "language_modeling":
        correct = [metrics.lm_correct(scores[i]) for i in range(len(instances))]
        rows = [
            {"index": inst.index, "correct": ok, "logprob": s.logprob, "n_tokens": s.n_tokens}
            for inst, ok, s in zip(instances, correct, scores, strict=True)
        ]
        return metrics.aggregate_binary(correct, cats), {}, rows
    choice_scores, pos = [], 0
    for inst, enc in zip(instances, encoded, strict=True):
        n = len(enc.requests)
        choice_scores.append(metrics.score_choices(inst, scores[pos : pos + n]))
        pos += n
    agg = metrics.aggregate_binary([c.correct for c in choice_scores], cats)
    extra = {
        "acc_sum": metrics.aggregate_binary([c.pred_sum == c.gold for c in choice_scores], cats).accuracy,
        "acc_char_norm": metrics.aggregate_binary(
            [c.pred_char == c.gold for c in choice_scores], cats
        ).accuracy,
    }
    rows = [
        {
            "index": inst.index,
            "gold": c.gold,
            "pred": c.pred,
            "correct": c.correct,
            "logprobs": list(c.logprobs),
        }
        for inst, c in zip(instances, choice_scores, strict=True)
    ]
    return agg, extra, rows


def _generate_pair(task, instances, encoded, engine, progress: Progress, label: str, limits: Limits):
    if task.task_type == "code_evaluation":
        # before any generation: a missing g++/node/python fails the pair, it never scores 0
        for language in sorted({inst.code.language for inst in instances if inst.code}):
            require_toolchain(language)
        sandbox.warn_once_if_not_isolated()
    gens = [e.generation for e in encoded]
    progress.start(label, len(gens))
    outputs = engine.generate(gens, progress=progress.advance)
    progress.finish()
    if task.task_type == "generation_task_with_answers":
        correct = [
            metrics.exact_match(
                out[0], inst.answers, stop=inst.stop, cot_delimiter=inst.cot_delimiter,
                do_normalization=task.do_normalization,
            )
            for inst, out in zip(instances, outputs, strict=True)
        ]  # fmt: skip
        rows = [
            {"index": inst.index, "output": out[0], "correct": ok}
            for inst, out, ok in zip(instances, outputs, correct, strict=True)
        ]
        cats = [inst.category for inst in instances] if task.has_categories else None
        return metrics.aggregate_binary(correct, cats), {}, rows
    # code_evaluation: every sampled completion through the sandbox (subprocesses, so threads suffice)
    jobs = [(inst.code, s) for inst, out in zip(instances, outputs, strict=True) for s in out]
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8))) as pool:
        checks = list(pool.map(lambda job: check_completion(job[0], job[1], limits), jobs))
    values, rows, pos = [], [], 0
    for inst, out in zip(instances, outputs, strict=True):
        mine = checks[pos : pos + len(out)]
        pos += len(out)
        c = sum(ch.passed for ch in mine)
        value = metrics.pass_at_k(len(out), c, task.pass_at_k)
        values.append(value)
        rows.append({
            "index": inst.index, "task_id": inst.code.task_id if inst.code else "", "passed": c,
            "pass_at_k": value, "samples": [{"completion": s, "result": ch.reason} for s, ch in zip(out, mine, strict=True)],
        })  # fmt: skip
    return metrics.aggregate_mean(values), {}, rows


def evaluate_pair(
    lm: Any,
    engine: Any,
    task: TaskSpec,
    num_fewshot: int,
    plan: RunPlan,
    key: str,
    progress: Progress | None = None,
) -> PairOutput:
    """Score one (benchmark, shots) pair; raises on failure (the caller records it)."""
    progress = progress or _NoProgress()
    label = f"{task.name} {num_fewshot}-shot"
    start = time.perf_counter()
    tokens_before = engine.stats.computed_tokens
    examples = plan.examples[task.name]
    instances: list[Instance] = build_instances(task, examples, num_fewshot, seed=plan.seed, limit=plan.limit)
    encoded = encode_task(task, examples, instances, lm.tokenizer, lm.max_length)
    if task.task_type in SCORED_TYPES:
        agg, extra, rows = _score_pair(task, instances, encoded, engine, progress, label)
        metric = "acc"
        tokens = engine.stats.computed_tokens - tokens_before
    else:
        agg, extra, rows = _generate_pair(task, instances, encoded, engine, progress, label, plan.sandbox)
        metric = f"pass@{task.pass_at_k}" if task.task_type == "code_evaluation" else "exact_match"
        # prompt tokens processed (generated tokens are not counted by the engine)
        tokens = sum(len(e.generation.context) * e.generation.num_samples for e in encoded if e.generation)
    record = sandbox.isolation().record() if task.task_type == "code_evaluation" else {}
    for inst_row, enc in zip(rows, encoded, strict=True):
        inst_row["truncated"] = enc.truncated
    result = TaskResult(
        benchmark=task.name,
        category=task.category,
        task_type=task.task_type,
        num_fewshot=num_fewshot,
        metric=metric,
        accuracy=float(agg.accuracy),
        n=agg.n,
        stderr=float(agg.stderr),
        random_baseline=task.random_baseline,
        truncated=sum(e.truncated for e in encoded),
        seconds=round(time.perf_counter() - start, 3),
        tokens_scored=int(tokens),
        config_key=key,
        metrics={**agg.metrics, **extra},
        sandbox=record,
    )
    return PairOutput(result, rows)


# ---- one checkpoint --------------------------------------------------------------------------------


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


def pair_key(model_key: dict[str, Any], task: TaskSpec, k: int, plan: RunPlan) -> str:
    return config_key(
        model_key, task, k, seed=plan.seed, limit=plan.limit, max_length=plan.max_length,
        sandbox=plan.sandbox.key(),
    )  # fmt: skip


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
    progress = progress or _NoProgress()
    summary = CheckpointSummary(
        checkpoint=checkpoint, model=dict(model.record), flops=flops, started_at=_now()
    )
    pairs = plan.pairs
    for i, (task, k) in enumerate(pairs, 1):
        key = pair_key(model.key, task, k, plan)
        done = None if plan.overwrite else finished_result(out_dir, task, k, key)
        if done is not None:
            log.info(
                "[%d/%d] %s %d-shot: already done (%s %.4f, key %s), skipping",
                i, len(pairs), task.name, k, done.metric, done.accuracy, key,
            )  # fmt: skip
            summary.results.append(done)
            progress.skip(f"{task.name} {k}-shot")
            continue
        lm, engine = model.get()  # a model that cannot load fails the whole call (BadInput: exit 2)
        summary.model = dict(lm.identity)
        log.info("[%d/%d] %s %d-shot: evaluating (key %s)", i, len(pairs), task.name, k, key)
        try:
            output = evaluate_pair(lm, engine, task, k, plan, key, progress)
        except Exception as exc:  # one pair's failure must not lose the others
            log.exception("%s %d-shot failed", task.name, k)
            summary.failures.append(Failure(task.name, k, f"{type(exc).__name__}: {exc}"))
            continue
        if plan.per_example:
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in output.rows)
            atomic_write_text(examples_path(out_dir, task.name, k, key), lines)
        write_task_result(out_dir, output.result)
        r = output.result
        log.info(
            "[%d/%d] %s %d-shot: %s %.4f ± %.4f (n=%d, %.1fs)",
            i, len(pairs), task.name, k, r.metric, r.accuracy, r.stderr, r.n, r.seconds,
        )  # fmt: skip
        summary.results.append(r)
    summary.finished_at = _now()
    write_summary(out_dir, summary)
    return summary
