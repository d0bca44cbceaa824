"""Run every code benchmark's canonical solutions through the sandbox: pass rate and samples/s.

A canonical solution that fails is either a data defect or a harness bug, so this is the
sandbox's end-to-end check on real data (and its throughput). Usage:

    .venv/bin/python benchmarks/sandbox_canonical.py [--tasks human_eval,human_eval_js,human_eval_cpp]
        [--workers 2] [--limit N]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import resolve_tasks
from benchcal_eval.requests import CodeSpec
from benchcal_eval.sandbox import check_completion, isolation_prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="human_eval,human_eval_js,human_eval_cpp")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    print(f"isolation prefix: {isolation_prefix() or 'none (no network isolation)'}")
    for task in resolve_tasks(args.tasks):
        rows = load_examples(task)[: args.limit]
        specs = [
            (
                CodeSpec(r["task_id"], r["prompt"], r["entry_point"], r["test"], tuple(r["test_inputs"]),
                         tuple(r["test_outputs"]), r["language"]),
                r["canonical_solution"],
            )
            for r in rows
        ]  # fmt: skip
        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            checks = list(pool.map(lambda job: check_completion(*job), specs))
        seconds = time.perf_counter() - start
        failed = [
            (spec.task_id, c.reason) for (spec, _), c in zip(specs, checks, strict=True) if not c.passed
        ]
        print(
            f"{task.name}: {len(specs) - len(failed)}/{len(specs)} canonical solutions pass; "
            f"{len(specs) / seconds:.1f} samples/s with {args.workers} workers ({seconds:.1f}s)"
        )
        for task_id, reason in failed:
            print(f"  {task_id}: {reason[:160]}")


if __name__ == "__main__":
    main()
