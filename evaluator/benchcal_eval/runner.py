"""Evaluate one checkpoint on every (benchmark, shot count) pair of its plan, resumably.

Flow per pair: examples -> instances -> token requests -> engine -> per-example scores ->
``TaskResult``, written atomically as soon as the pair finishes. A re-run skips every pair whose
result file carries the same ``config_key`` (``benchcal_eval.resume``). One failing pair is
recorded in the summary's ``failures`` and the others continue. Whole-run problems (unknown task,
bad shots, malformed data) are ``BadInput`` raised by ``plan.prepare`` before the model does any
work. The summary covers exactly the plan's pairs: one call evaluates a whole checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
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
from benchcal.tasks.registry import TaskSpec
from benchcal_eval import metrics
from benchcal_eval.plan import RunPlan
from benchcal_eval.prompts import build_instances
from benchcal_eval.requests import Instance
from benchcal_eval.resume import config_key, finished_result
from benchcal_eval.sandbox import Limits, check_completion
from benchcal_eval.tokenize import encode_task

log = logging.getLogger("benchcal.evaluate")

SCORED_TYPES = ("language_modeling", "multiple_choice", "schema")


class Progress(Protocol):
    """Where the runner reports work: one ``start`` per pair, ``advance`` per finished request."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
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


def _generate_pair(task, instances, encoded, engine, progress: Progress, label: str, sandbox: Limits):
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
        checks = list(pool.map(lambda job: check_completion(job[0], job[1], sandbox), jobs))
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
    )
    return PairOutput(result, rows)


# ---- one checkpoint --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_checkpoint(
    lm: Any,
    engine: Any,
    plan: RunPlan,
    out_dir: str | Path,
    *,
    checkpoint: str,
    flops: float | None = None,
    progress: Progress | None = None,
) -> CheckpointSummary:
    """Evaluate every pair of ``plan`` (skipping finished ones), then write ``summary.json``."""
    out_dir = Path(out_dir)
    summary = CheckpointSummary(
        checkpoint=checkpoint, model=dict(lm.identity), flops=flops, started_at=_now()
    )
    pairs = plan.pairs
    for i, (task, k) in enumerate(pairs, 1):
        key = config_key(lm.identity, task, k, seed=plan.seed, limit=plan.limit, max_length=lm.max_length)
        done = finished_result(out_dir, task, k, key)
        if done is not None:
            log.info(
                "[%d/%d] %s %d-shot: already done (acc %.4f), skipping",
                i,
                len(pairs),
                task.name,
                k,
                done.accuracy,
            )
            summary.results.append(done)
            continue
        log.info("[%d/%d] %s %d-shot: evaluating", i, len(pairs), task.name, k)
        try:
            output = evaluate_pair(lm, engine, task, k, plan, key, progress)
        except Exception as exc:  # one pair's failure must not lose the others
            log.exception("%s %d-shot failed", task.name, k)
            summary.failures.append(Failure(task.name, k, f"{type(exc).__name__}: {exc}"))
            continue
        if plan.per_example:
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in output.rows)
            atomic_write_text(examples_path(out_dir, task.name, k), lines)
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
