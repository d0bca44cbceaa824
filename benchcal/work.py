"""What work a CalibrationRun's spec asks for, as keys: the pairs of a checkpoint, the reduction input.

A run grows (issue 15): checkpoints are added or removed, benchmarks and shot counts are added.
The operator must then start only the work that is new. Two pure keys decide it:

- ``pairs_key``: a short hash over a checkpoint's (benchmark, shots) pairs. Each evaluator Job
  records the pairs it evaluates (a label with this key, an annotation with the pairs). A
  checkpoint needs a new Job only when no Succeeded Job of the run ``covers`` its current pairs;
  the new Job gets the full list and the evaluator's resume skips the pairs already on the
  results volume (same resume key: same model content, seed, limit, ...; the CRD keeps those
  immutable).
- ``reduction_key``: a short hash over what the reducer reads: the checkpoints it reduces (names
  and FLOPs), the pairs, the classification settings. A generation that changes none of them
  (suspend, tolerations, the evaluator image) keeps its reducer Job; one that does gets a new one.

Both are pure functions of the spec, so Job names built from them are too: an operator killed
between "create" and "record" finds its Job again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from benchcal.spec import CalibrationRun
from benchcal.tasks.selection import format_pairs, parse_pairs

KEY_LENGTH = 10  # hex digits: a label value, and a Job name suffix
Pair = tuple[str, int]


def run_pairs(run: CalibrationRun) -> tuple[Pair, ...]:
    """Every (benchmark, shots) pair the suite asks for, sorted: the same for every checkpoint."""
    return tuple(sorted((sel.name, int(k)) for sel in run.suite.benchmarks for k in sel.shots))


def _digest(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


def pairs_key(pairs: Iterable[Pair]) -> str:
    return _digest(sorted((str(b), int(k)) for b, k in pairs))


def format_pair_list(pairs: Iterable[Pair]) -> str:
    """Pairs as ``benchcal evaluate --tasks`` spells them (``'arc_easy:0,3;piqa:0'``)."""
    by_bench: dict[str, list[int]] = {}
    for bench, k in sorted(pairs):
        by_bench.setdefault(bench, []).append(int(k))
    return format_pairs(list(by_bench.items()))


def parse_pair_list(text: str) -> frozenset[Pair]:
    """The inverse of ``format_pair_list``; an empty or malformed text gives no pairs (covers nothing)."""
    try:
        return frozenset((b, int(k)) for b, shots in parse_pairs(text) for k in shots)
    except Exception:  # an annotation edited by hand must not crash the planner
        return frozenset()


def covers(done: Iterable[Pair], needed: Iterable[Pair]) -> bool:
    """Whether a Job that evaluated ``done`` leaves nothing of ``needed`` to do."""
    return set(needed) <= set(done)


def reduction_key(run: CalibrationRun) -> str:
    """The reducer's input: the checkpoints (names and FLOPs), the pairs, the classification."""
    payload = {
        "checkpoints": sorted((c.name, float(c.flops)) for c in run.checkpoints),
        "pairs": run_pairs(run),
        "classification": {"alpha": run.classification.alpha, "strict": run.classification.strict},
    }
    return _digest(payload)
