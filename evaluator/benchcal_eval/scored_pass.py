"""The bookkeeping of one checkpoint's evaluation (``CheckpointBook``: results by pair, failures,
files) and its one scored pass (``score_in_one_pass``): every scored pair's requests go to the
engine in one ``score_groups`` call, and each pair's result is written atomically from ``on_done``
as soon as its last request is scored. A pair whose metrics or write fail fails alone; a pass that
fails fails exactly the pairs it had not finished.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from benchcal.results import (
    CheckpointSummary,
    Failure,
    TaskResult,
    atomic_write_text,
    examples_path,
    write_task_result,
)
from benchcal.storage import Location
from benchcal_eval.pairs import PairOutput, PreparedPair, scored_output
from benchcal_eval.plan import RunPlan
from benchcal_eval.progress import Progress
from benchcal_eval.requests import ScoreResult

log = logging.getLogger("benchcal.evaluate")


class CheckpointBook:
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


def score_in_one_pass(
    engine: Any, pairs: list[PreparedPair], book: CheckpointBook, progress: Progress
) -> None:
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
