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
from benchcal_eval import continuous, metrics, sandbox
from benchcal_eval.engine.packing import effective_context
from benchcal_eval.plan import RunPlan
from benchcal_eval.prompts import build_instances
from benchcal_eval.requests import Instance, ScoreRequest, ScoreResult
from benchcal_eval.resume import config_key, finished_result
from benchcal_eval.sandbox import Limits, check_completion, require_toolchain
from benchcal_eval.tokenize import encode_task

log = logging.getLogger("benchcal.evaluate")

SCORED_TYPES = ("language_modeling", "multiple_choice", "schema")


class Progress(Protocol):
    """Where the runner reports work: ``skip`` per pair resumed from disk; one ``start`` per unit
    of work (the scored pass, covering ``pairs`` pairs, or one generation pair), ``advance`` per
    finished request, ``pair_done`` per pair of the unit finished (written or failed), ``finish``."""

    def skip(self, label: str) -> None: ...
    def start(self, label: str, total: int, pairs: int = 1) -> None: ...
    def advance(self, n: int) -> None: ...
    def pair_done(self, label: str) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def skip(self, label: str) -> None:
        pass

    def start(self, label: str, total: int, pairs: int = 1) -> None:
        pass

    def pair_done(self, label: str) -> None:
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


# ---- one checkpoint --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Checkpoint:
    """The bookkeeping of one ``run_checkpoint`` call: results by pair, failures, files."""

    def __init__(self, plan: RunPlan, out_dir: Location, summary: CheckpointSummary) -> None:
        self.plan, self.out_dir, self.summary = plan, out_dir, summary
        self.order = {(t.name, k): i for i, (t, k) in enumerate(plan.pairs, 1)}
        self.results: dict[tuple[str, int], TaskResult] = {}

    def tag(self, name: str, k: int) -> str:
        return f"[{self.order[(name, k)]}/{len(self.order)}] {name} {k}-shot"

    def fail(self, name: str, k: int, exc: BaseException) -> None:
        log.error("%s failed: %s: %s", self.tag(name, k), type(exc).__name__, exc, exc_info=exc)
        self.summary.failures.append(Failure(name, k, f"{type(exc).__name__}: {exc}"))

    def write(self, output: PairOutput) -> None:
        r = output.result
        if self.plan.per_example:
            lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in output.rows)
            atomic_write_text(examples_path(self.out_dir, r.benchmark, r.num_fewshot, r.config_key), lines)
        write_task_result(self.out_dir, r)
        self.results[(r.benchmark, r.num_fewshot)] = r
        log.info(
            "%s: %s %.4f ± %.4f (n=%d, %.1fs)",
            self.tag(r.benchmark, r.num_fewshot), r.metric, r.accuracy, r.stderr, r.n, r.seconds,
        )  # fmt: skip


def _score_in_one_pass(engine: Any, pairs: list[PreparedPair], book: _Checkpoint, progress: Progress) -> None:
    """Every scored pair through one ``score_groups`` call; each result written from ``on_done``.

    A pair's ``seconds`` and ``tokens_scored`` are its share of the pass's wall time and computed
    tokens since the previous completing batch (split evenly among the pairs that batch completes),
    plus its own prompt building: pairs share work, so their costs are not separable; attributed
    this way they sum to the pass's totals.
    """
    if not pairs:
        return
    total = sum(len(p.requests) for p in pairs)
    log.info("scoring %d pairs (%d requests) in one pass", len(pairs), total)
    stats = engine.stats
    start = last_t = time.perf_counter()
    tokens0 = last_tokens = stats.computed_tokens
    finished: set[int] = set()
    cohort = {"batch": -1, "seconds": 0.0, "tokens": 0, "n": 1}  # the batch now completing pairs

    def on_done(g: int, scores: list[ScoreResult]) -> None:
        nonlocal last_t, last_tokens
        pair = pairs[g]
        extra_tokens = 0
        if stats.batches != cohort["batch"]:  # the first pair this batch completes
            now, tokens = time.perf_counter(), stats.computed_tokens
            n = max(1, int(stats.extra.get("groups_completed_by_batch", 1))) if stats.batches else 1
            cohort.update(
                batch=stats.batches, seconds=(now - last_t) / n, tokens=(tokens - last_tokens) // n, n=n
            )
            extra_tokens = (tokens - last_tokens) % n
            last_t, last_tokens = now, tokens
        finished.add(g)
        try:
            seconds = pair.prep_seconds + float(cohort["seconds"])
            output = scored_output(pair, scores, seconds, int(cohort["tokens"]) + extra_tokens)
            book.write(output)
        except Exception as exc:  # one pair's metric or write failure must not stop the pass
            book.fail(pair.task.name, pair.num_fewshot, exc)
        progress.pair_done(pair.label)

    progress.start(f"{len(pairs)} scored pairs", total, pairs=len(pairs))
    try:
        engine.score_groups([p.requests for p in pairs], progress=progress.advance, on_done=on_done)
    except Exception as exc:  # the pass itself failed: every pair it had not finished fails with it
        for g, pair in enumerate(pairs):
            if g not in finished:
                book.fail(pair.task.name, pair.num_fewshot, exc)
    finally:
        progress.finish()
    seconds = time.perf_counter() - start
    computed = stats.computed_tokens - tokens0
    log.info(
        "one pass: %d requests in %.1fs (%.1f req/s), %d tokens computed for %d request tokens",
        total, seconds, total / max(seconds, 1e-9), computed, sum(
            len(r.context) + len(r.continuation) for p in pairs for r in p.requests
        ),
    )  # fmt: skip


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
        sandbox=plan.sandbox.key(), sampling=plan.fewshot_sampling,
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
    book = _Checkpoint(plan, out_dir, summary)
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
        _score_in_one_pass(engine, scored, book, progress)
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
