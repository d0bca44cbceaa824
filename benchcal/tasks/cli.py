"""``benchcal tasks``: print the benchmark registry (aligned table or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchcal.tasks.loading import example_count
from benchcal.tasks.registry import VERSIONS, TaskSpec, list_tasks, load_task_file, resolve_tasks

COLUMNS = ("name", "category", "type", "baseline", *VERSIONS, "examples", "status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (one object per benchmark)")
    parser.add_argument("--task-file", action="append", default=[], metavar="YAML",
                        help="also list the user benchmarks of this task file (repeatable)")  # fmt: skip
    parser.add_argument("--tasks", default=None, metavar="SEL",
                        help="only these: 'a,b' | 'all' | 'category:NAME' | 'preset:gauntlet-v0.2'")  # fmt: skip


def task_record(task: TaskSpec) -> dict[str, Any]:
    """Everything about a benchmark, JSON-ready."""
    return {
        "name": task.name,
        "category": task.category,
        "task_type": task.task_type,
        "random_baseline": task.random_baseline,
        "shots": dict(task.shots),
        "standard_shots": task.standard_shots,
        "examples": example_count(task),
        "available": task.available,
        "unavailable_reason": task.unavailable_reason or None,
        "data_file": task.data_file,
        "has_categories": task.has_categories,
        "continuation_delimiter": task.continuation_delimiter,
        "example_delimiter": task.example_delimiter,
        "prompt_string": task.prompt_string,
        "question_prelimiter": task.question_prelimiter,
        "cot_delimiter": task.cot_delimiter,
        "stop": list(task.stop),
        "do_normalization": task.do_normalization,
        "pass_at_k": task.pass_at_k,
        "generations_per_sample": task.generations_per_sample,
        "fewshot_random_seed": task.fewshot_random_seed,
    }


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(records: list[dict[str, Any]]) -> str:
    """Aligned plain-text table; reasons for unavailable benchmarks follow as notes."""
    rows = [list(COLUMNS)]
    for r in records:
        rows.append([
            r["name"], r["category"], r["task_type"], f"{r['random_baseline']:g}",
            *(_cell(r["shots"][v]) for v in VERSIONS),
            _cell(r["examples"]), "ok" if r["available"] else "UNAVAILABLE",
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {3, 4, 5, 6, 7}
    lines = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    available = sum(r["available"] for r in records)
    lines.append(f"\n{len(records)} benchmarks, {available} available. Shots: the count each gauntlet "
                 "version aggregates ('-' = not in that version).")  # fmt: skip
    for r in records:
        if not r["available"]:
            lines.append(f"  {r['name']}: unavailable: {r['unavailable_reason']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    extra: list[TaskSpec] = []
    for path in args.task_file:
        extra.extend(load_task_file(path))
    if args.tasks:
        tasks = resolve_tasks(args.tasks, extra)
    else:
        user = {t.name for t in extra}
        tasks = [t for t in list_tasks() if t.name not in user] + extra
    records = [task_record(t) for t in tasks]
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_table(records))
    return 0
