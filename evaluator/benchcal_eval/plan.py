"""The plan of one ``benchcal evaluate`` call: which (benchmark, shots) pairs, with which data.

Everything a user can get wrong about the run itself (no pairs, bad shots, an unavailable
benchmark, malformed data, a bad shard) is a ``BadInput`` raised by ``prepare``, before the
model is loaded. Pairs come from ``benchcal.tasks.selection.select`` (or ``grid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchcal.errors import BadInput
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import TaskSpec
from benchcal_eval.sandbox import Limits


@dataclass
class RunPlan:
    """Everything validated before any model work: which pairs, with which data."""

    all_pairs: list[tuple[TaskSpec, int]]  # every (benchmark, shots) of the call, in order
    examples: dict[str, list[dict[str, Any]]]
    limit: int | None = None
    seed: int | None = None
    per_example: bool = False
    sandbox: Limits = field(default_factory=Limits)
    shard: tuple[int, int] = (0, 1)  # (index, count): an Indexed Job's pod evaluates every count-th pair

    @property
    def pairs(self) -> list[tuple[TaskSpec, int]]:
        """The pairs this shard evaluates."""
        index, count = self.shard
        return [pair for i, pair in enumerate(self.all_pairs) if i % count == index]

    @property
    def tasks(self) -> list[TaskSpec]:
        """The distinct benchmarks of the call, in order."""
        return list({t.name: t for t, _ in self.all_pairs}.values())


def prepare(
    pairs: Sequence[tuple[TaskSpec, int]],
    *,
    limit: int | None = None,
    seed: int | None = None,
    per_example: bool = False,
    sandbox: Limits | None = None,
    shard: tuple[int, int] = (0, 1),
) -> RunPlan:
    """Validate the whole run and load every benchmark's data (malformed JSONL fails here)."""
    if not pairs:
        raise BadInput("no benchmarks selected")
    shots = [k for _, k in pairs]
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in shots):
        raise BadInput(f"shot counts must be integers >= 0, got {shots}")
    keys = [(t.name, k) for t, k in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise BadInput(f"(benchmark, shots) pair(s) listed twice: {twice}")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be a positive integer, got {limit}")
    if not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise BadInput(
            f"shard index must be in [0, {shard[1]}) with a count >= 1, got {shard[0]} of {shard[1]}"
        )
    tasks = list({t.name: t for t, _ in pairs}.values())
    for task in tasks:
        if not task.available:
            raise BadInput(f"benchmark {task.name!r} is unavailable: {task.unavailable_reason}")
        if task.task_type == "code_evaluation" and task.generations_per_sample < task.pass_at_k:
            raise BadInput(f"{task.name}: generations_per_sample must be >= pass_at_k")
    examples = {t.name: load_examples(t) for t in tasks}
    for name, rows in examples.items():
        if not rows:
            raise BadInput(f"benchmark {name!r} has no examples")
    return RunPlan(list(pairs), examples, limit, seed, per_example, sandbox or Limits(), shard)
