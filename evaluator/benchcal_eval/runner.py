"""Evaluate one checkpoint on every (benchmark, shot count) pair, resumably.

Flow per pair: examples -> instances -> token requests -> engine -> per-example scores ->
``TaskResult``, written atomically as soon as the pair finishes. A re-run skips every pair whose
result file carries the same ``config_key`` (hash of model identity, task definition and data,
shots, seed, limit, max length and schema version). One failing pair is recorded in the summary's
``failures`` and the others continue. Whole-run problems (unknown task, bad shots, malformed data)
are ``BadInput`` raised by ``prepare`` before the model does any work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from benchcal.errors import BadInput
from benchcal.results import (
    SCHEMA_VERSION,
    CheckpointSummary,
    Failure,
    TaskResult,
    atomic_write_text,
    examples_path,
    read_task_result,
    result_path,
    write_summary,
    write_task_result,
)
from benchcal.tasks.registry import TaskSpec, load_examples
from benchcal_eval import metrics
from benchcal_eval.prompts import DEFAULT_SAMPLING, SAMPLING, build_instances
from benchcal_eval.requests import Instance
from benchcal_eval.sandbox import Limits, check_completion
from benchcal_eval.tokenize import encode_task

log = logging.getLogger("benchcal.evaluate")

SCORED_TYPES = ("language_modeling", "multiple_choice", "schema")
# Identity fields that do not change scores (where a model ran, not what it is).
_IDENTITY_IGNORED = ("device",)


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


@dataclass
class RunPlan:
    """Everything validated before any model work: which pairs, with which data."""

    tasks: list[TaskSpec]
    shots: tuple[int, ...]
    examples: dict[str, list[dict[str, Any]]]
    limit: int | None = None
    seed: int | None = None
    per_example: bool = False
    sandbox: Limits = field(default_factory=Limits)
    extra_tasks: tuple[TaskSpec, ...] = ()  # user benchmarks (--task-file), for name lookups
    shard: tuple[int, int] = (0, 1)  # (index, count): an Indexed Job's pod evaluates every count-th pair
    fewshot_sampling: str = DEFAULT_SAMPLING  # nested | independent | fixed (benchcal_eval.prompts)

    @property
    def pairs(self) -> list[tuple[TaskSpec, int]]:
        index, count = self.shard
        every = [(t, k) for t in self.tasks for k in self.shots]
        return [pair for i, pair in enumerate(every) if i % count == index]


def parse_shots(text: str) -> tuple[int, ...]:
    """'0,1,3' -> (0, 1, 3); BadInput for anything that is not distinct integers >= 0."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise BadInput("--shots is empty; give shot counts like 0,1,3,5,10")
    shots = []
    for p in parts:
        if not p.isdigit():
            raise BadInput(f"--shots: {p!r} is not a non-negative integer (example: --shots 0,1,3,5,10)")
        shots.append(int(p))
    if len(set(shots)) != len(shots):
        raise BadInput(f"--shots {text!r} repeats a shot count")
    return tuple(shots)


def prepare(
    tasks: Sequence[TaskSpec],
    shots: Sequence[int],
    *,
    limit: int | None = None,
    seed: int | None = None,
    per_example: bool = False,
    sandbox: Limits | None = None,
    extra_tasks: Sequence[TaskSpec] = (),
    shard: tuple[int, int] = (0, 1),
    fewshot_sampling: str = DEFAULT_SAMPLING,
) -> RunPlan:
    """Validate the whole run and load every benchmark's data (malformed JSONL fails here)."""
    if not tasks:
        raise BadInput("no benchmarks selected")
    if not shots:
        raise BadInput("no shot counts selected")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in shots):
        raise BadInput(f"shot counts must be integers >= 0, got {list(shots)}")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be a positive integer, got {limit}")
    if not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise BadInput(
            f"shard index must be in [0, {shard[1]}) with a count >= 1, got {shard[0]} of {shard[1]}"
        )
    if fewshot_sampling not in SAMPLING:
        raise BadInput(f"--fewshot-sampling must be one of {', '.join(SAMPLING)}, got {fewshot_sampling!r}")
    for task in tasks:
        if not task.available:
            raise BadInput(f"benchmark {task.name!r} is unavailable: {task.unavailable_reason}")
        if task.task_type == "code_evaluation" and task.generations_per_sample < task.pass_at_k:
            raise BadInput(f"{task.name}: generations_per_sample must be >= pass_at_k")
    examples = {t.name: load_examples(t) for t in tasks}
    for name, rows in examples.items():
        if not rows:
            raise BadInput(f"benchmark {name!r} has no examples")
    return RunPlan(
        list(tasks),
        tuple(shots),
        examples,
        limit,
        seed,
        per_example,
        sandbox or Limits(),
        tuple(extra_tasks),
        shard,
        fewshot_sampling,
    )


# ---- resume key ------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def task_fingerprint(task: TaskSpec) -> dict[str, Any]:
    """The task definition with its data's content hash instead of its (machine-specific) path."""
    spec = asdict(task)
    for key in ("data_file", "available", "unavailable_reason", "shots", "standard_shots"):
        spec.pop(key, None)  # where the data lives / presets: do not change a pair's scores
    st = os.stat(task.data_file)
    spec["data_sha256"] = _file_sha256(task.data_file, st.st_mtime_ns, st.st_size)
    return spec


def config_key(
    identity: dict[str, Any],
    task: TaskSpec,
    num_fewshot: int,
    *,
    seed: int | None,
    limit: int | None,
    max_length: int,
    sampling: str = "independent",
) -> str:
    payload = {
        "model": {k: v for k, v in identity.items() if k not in _IDENTITY_IGNORED},
        "task": task_fingerprint(task),
        "num_fewshot": num_fewshot,
        "seed": task.fewshot_random_seed if seed is None else seed,
        "limit": limit,
        "max_length": max_length,
        "schema": SCHEMA_VERSION,
    }
    if num_fewshot > 0 and sampling != "independent":  # keys of independent (older) results stay valid
        payload["fewshot_sampling"] = sampling
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def finished_result(out_dir: Path, task: TaskSpec, num_fewshot: int, key: str) -> TaskResult | None:
    """The stored result of a pair if it was computed with the same config; stale files are removed."""
    path = result_path(out_dir, task.name, num_fewshot)
    if not path.exists():
        return None
    try:
        result = read_task_result(path)
    except BadInput as exc:
        log.warning("ignoring unreadable result %s: %s", path, exc)
        result = None
    if result is not None and result.config_key == key:
        return result
    log.info("%s %d-shot: stored result has a different config; recomputing", task.name, num_fewshot)
    path.unlink(missing_ok=True)
    return None


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
    instances: list[Instance] = build_instances(
        task, examples, num_fewshot, seed=plan.seed, limit=plan.limit, sampling=plan.fewshot_sampling
    )
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
        key = config_key(
            lm.identity, task, k, seed=plan.seed, limit=plan.limit, max_length=lm.max_length,
            sampling=plan.fewshot_sampling,
        )  # fmt: skip
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
    summary.results += other_finished_results(out_dir, plan, lm.identity, lm.max_length)
    summary.finished_at = _now()
    write_summary(out_dir, summary)
    return summary


def other_finished_results(
    out_dir: Path, plan: RunPlan, identity: dict[str, Any], max_length: int
) -> list[TaskResult]:
    """Valid results in ``out_dir`` for pairs outside ``plan``, so the summary covers the directory.

    A checkpoint may be evaluated by several invocations into one directory (one per shot list;
    see ``benchcal.commands``). A stored result counts only if its ``config_key`` equals the key
    this invocation would compute for it (same model, task, seed, limit, max length); files of
    other models or settings, unknown benchmarks and unreadable files are left out.
    """
    from benchcal.tasks.registry import get_task

    planned = {(t.name, k) for t, k in plan.pairs}
    found = []
    for path in sorted((out_dir / "results").glob("*/*shot.json")):
        try:
            result = read_task_result(path)
            if (result.benchmark, result.num_fewshot) in planned:
                continue
            task = get_task(result.benchmark, (*plan.extra_tasks, *plan.tasks))
            key = config_key(
                identity, task, result.num_fewshot, seed=plan.seed, limit=plan.limit, max_length=max_length,
                sampling=plan.fewshot_sampling,
            )  # fmt: skip
        except (BadInput, OSError) as exc:
            log.debug("not summarising %s: %s", path, exc)
            continue
        if result.config_key == key:
            found.append(result)
    return found
