"""What to evaluate: the ``--tasks`` / ``--shots`` syntax of ``benchcal evaluate``, both ways.

Two forms, one meaning (a list of (benchmark, shot count) pairs):

- a selector and a shot list: ``--tasks a,b`` | ``all`` | ``category:NAME`` | ``preset:gauntlet-v0.1``
  with ``--shots 0,1,3`` (every selected benchmark at every shot count);
- explicit pairs: ``--tasks 'arc_easy:0,3;piqa:0'`` (``benchmark:shots``, ``;``-separated), so one
  command covers a checkpoint whose benchmarks use different shot lists.

``benchcal.commands`` writes the pairs form (``format_pairs``); the evaluator CLI reads both
(``select``). Pairs are kept in the order given, benchmark by benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from benchcal.errors import BadInput
from benchcal.tasks.registry import TaskSpec, get_task, resolve_tasks

DEFAULT_SHOTS = (0, 1, 3, 5, 10)
PAIR_SEPARATOR = ";"
# NAME:0,1,3 — a benchmark name never contains ':' or ';', a shot list is digits and commas
_PAIR = re.compile(r"\s*([^:;\s]+)\s*:\s*(\d+(?:\s*,\s*\d+)*)\s*")

Pairs = list[tuple[str, tuple[int, ...]]]  # benchmark name -> its shot counts, in order


def parse_shots(text: str, what: str = "--shots") -> tuple[int, ...]:
    """'0,1,3' -> (0, 1, 3); BadInput for anything that is not distinct integers >= 0."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise BadInput(f"{what} is empty; give shot counts like 0,1,3,5,10")
    shots = []
    for p in parts:
        if not p.isdigit():
            raise BadInput(f"{what}: {p!r} is not a non-negative integer (example: --shots 0,1,3,5,10)")
        shots.append(int(p))
    if len(set(shots)) != len(shots):
        raise BadInput(f"{what} {text!r} repeats a shot count")
    return tuple(shots)


def format_shots(shots: Sequence[int]) -> str:
    return ",".join(str(int(k)) for k in shots)


SELECTOR_PREFIXES = ("category:", "preset:")


def is_pairs(text: str) -> bool:
    """Whether a ``--tasks`` value is (meant as) the pairs form: it has a ':' that does not start
    a ``category:`` or ``preset:`` selector. ``parse_pairs`` then says what is wrong with it."""
    text = str(text).strip()
    return ":" in text and not text.startswith(SELECTOR_PREFIXES)


def parse_pairs(text: str) -> Pairs:
    """``'arc_easy:0,3;piqa:0'`` -> ``[("arc_easy", (0, 3)), ("piqa", (0,))]``."""
    pairs: Pairs = []
    seen: set[str] = set()
    for item in str(text).split(PAIR_SEPARATOR):
        if not item.strip():
            continue
        match = _PAIR.fullmatch(item)
        if match is None:
            raise BadInput(
                f"--tasks: {item.strip()!r} is not BENCHMARK:SHOTS (example: --tasks 'arc_easy:0,3;piqa:0')"
            )
        name = match.group(1)
        if name in seen:
            raise BadInput(f"--tasks: benchmark {name!r} is listed twice; give all its shots in one item")
        seen.add(name)
        pairs.append((name, parse_shots(match.group(2), f"--tasks {name}")))
    if not pairs:
        raise BadInput("--tasks is empty")
    return pairs


def format_pairs(pairs: Sequence[tuple[str, Sequence[int]]]) -> str:
    """The inverse of ``parse_pairs``: ``[("arc_easy", (0, 3)), ("piqa", (0,))]`` -> ``'arc_easy:0,3;piqa:0'``."""
    return PAIR_SEPARATOR.join(f"{name}:{format_shots(shots)}" for name, shots in pairs)


def grid(tasks: Sequence[TaskSpec], shots: Sequence[int]) -> list[tuple[TaskSpec, int]]:
    """Every task at every shot count, task by task."""
    return [(task, int(k)) for task in tasks for k in shots]


def select(
    tasks: str, shots: str | None = None, extra: Sequence[TaskSpec] = ()
) -> list[tuple[TaskSpec, int]]:
    """The (benchmark, shot count) pairs of a ``--tasks`` value (and ``--shots``, selector form only).

    ``extra`` holds user benchmarks (``--task-file``); they shadow built-ins of the same name.
    """
    if is_pairs(tasks):
        if shots is not None:
            raise BadInput("--shots cannot be combined with BENCHMARK:SHOTS pairs in --tasks")
        return [(get_task(name, tuple(extra)), k) for name, ks in parse_pairs(tasks) for k in ks]
    return grid(resolve_tasks(tasks, tuple(extra)), DEFAULT_SHOTS if shots is None else parse_shots(shots))
