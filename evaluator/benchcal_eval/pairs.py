"""One (benchmark, shot count) pair of a checkpoint: its prompts and token requests before any
model work (``prepare_pair``), its resume key (``pair_key``), and its ``TaskResult`` with the
per-example rows, from the scores of its requests (``scored_output``: language modeling, multiple
choice, schema) or by generating on its own (``generated_output``: exact match, code through the
sandbox). A code pair whose toolchain is missing fails before any generation; it never scores 0.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchcal.results import TaskResult
from benchcal.tasks.registry import TaskSpec
from benchcal_eval import continuous, metrics, sandbox
from benchcal_eval.engine.packing import effective_context
from benchcal_eval.plan import RunPlan
from benchcal_eval.progress import Progress
from benchcal_eval.prompts import build_instances
from benchcal_eval.requests import Instance, ScoreRequest, ScoreResult
from benchcal_eval.resume import config_key
from benchcal_eval.sandbox import Limits, check_completion, require_toolchain
from benchcal_eval.tokenize import encode_task

SCORED_TYPES = ("language_modeling", "multiple_choice", "schema")


def pair_key(model_key: dict[str, Any], task: TaskSpec, k: int, plan: RunPlan) -> str:
    return config_key(
        model_key, task, k, seed=plan.seed, limit=plan.limit, max_length=plan.max_length,
        sandbox=plan.sandbox.key(), sampling=plan.fewshot_sampling,
    )  # fmt: skip


@dataclass
class PairOutput:
    result: TaskResult
    rows: list[dict[str, Any]]  # per-example records


@dataclass
class PreparedPair:
    """A pending pair with its prompts and token requests, before any model work."""

    task: TaskSpec
    num_fewshot: int
    key: str
    instances: list[Instance]
    encoded: list[Any]  # tokenize.Encoded, one per instance
    prep_seconds: float

    @property
    def label(self) -> str:
        return f"{self.task.name} {self.num_fewshot}-shot"

    @property
    def requests(self) -> list[ScoreRequest]:
        return [r for e in self.encoded for r in e.requests]


def prepare_pair(lm: Any, task: TaskSpec, num_fewshot: int, plan: RunPlan, key: str) -> PreparedPair:
    """Prompts and token requests of one pair; a scored pair's requests are validated here (the
    packing's own check), so one bad pair fails alone instead of failing the shared pass."""
    start = time.perf_counter()
    examples = plan.examples[task.name]
    instances: list[Instance] = build_instances(
        task, examples, num_fewshot, seed=plan.seed, limit=plan.limit, sampling=plan.fewshot_sampling
    )
    encoded = encode_task(task, examples, instances, lm.tokenizer, lm.max_length)
    pair = PreparedPair(task, num_fewshot, key, instances, encoded, 0.0)
    if task.task_type in SCORED_TYPES:
        for i, req in enumerate(pair.requests):
            effective_context(req, i, lm.max_length)
    pair.prep_seconds = time.perf_counter() - start
    return pair


def _scored_metrics(task: TaskSpec, instances: list[Instance], encoded: list[Any], scores: list[ScoreResult]):
    cats = [inst.category for inst in instances] if task.has_categories else None
    # gold_prob, gold_margin, bits_per_byte (+ majority_rate) from the same scores: no extra pass
    latent, latent_rows = continuous.pair_metrics(task.task_type, instances, encoded, scores, cats)
    rows: list[dict[str, Any]] = []
    if task.task_type == "language_modeling":
        correct = [metrics.lm_correct(scores[i]) for i in range(len(instances))]
        rows = [
            {"index": inst.index, "correct": ok, "logprob": s.logprob, "n_tokens": s.n_tokens, **more}
            for inst, ok, s, more in zip(instances, correct, scores, latent_rows, strict=True)
        ]
        return metrics.aggregate_binary(correct, cats), latent, rows
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
        **latent,
    }
    rows = [
        {
            "index": inst.index,
            "gold": c.gold,
            "pred": c.pred,
            "correct": c.correct,
            "logprobs": list(c.logprobs),
            **more,
        }
        for inst, c, more in zip(instances, choice_scores, latent_rows, strict=True)
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


def _pair_output(
    pair: PreparedPair, agg, extra, rows, metric: str, seconds: float, tokens: int
) -> PairOutput:
    for inst_row, enc in zip(rows, pair.encoded, strict=True):
        inst_row["truncated"] = enc.truncated
    task = pair.task
    record = sandbox.isolation().record() if task.task_type == "code_evaluation" else {}
    result = TaskResult(
        benchmark=task.name,
        category=task.category,
        task_type=task.task_type,
        num_fewshot=pair.num_fewshot,
        metric=metric,
        accuracy=float(agg.accuracy),
        n=agg.n,
        stderr=float(agg.stderr),
        random_baseline=task.random_baseline,
        truncated=sum(e.truncated for e in pair.encoded),
        seconds=round(seconds, 3),
        tokens_scored=int(tokens),
        config_key=pair.key,
        metrics={**agg.metrics, **extra},
        sandbox=record,
        category_counts=agg.category_counts,
    )
    return PairOutput(result, rows)


def scored_output(pair: PreparedPair, scores: list[ScoreResult], seconds: float, tokens: int) -> PairOutput:
    """A scored pair's result from its requests' scores (in request order)."""
    agg, extra, rows = _scored_metrics(pair.task, pair.instances, pair.encoded, scores)
    return _pair_output(pair, agg, extra, rows, "acc", seconds, tokens)


def generated_output(pair: PreparedPair, engine: Any, plan: RunPlan, progress: Progress) -> PairOutput:
    """Run a generation pair (exact match or code) on its own."""
    start = time.perf_counter()
    task = pair.task
    agg, extra, rows = _generate_pair(
        task, pair.instances, pair.encoded, engine, progress, pair.label, plan.sandbox
    )
    metric = f"pass@{task.pass_at_k}" if task.task_type == "code_evaluation" else "exact_match"
    # prompt tokens processed (generated tokens are not counted by the engine)
    tokens = sum(len(e.generation.context) * e.generation.num_samples for e in pair.encoded if e.generation)
    return _pair_output(
        pair, agg, extra, rows, metric, pair.prep_seconds + time.perf_counter() - start, tokens
    )
