"""The verdict history of a CalibrationRun: how each benchmark's verdict changed as checkpoints were added.

A run grows (checkpoints appended, benchmarks or shot counts added); every reduction gives one
``HistoryEntry``: the spec generation it reduced, the checkpoints it reduced over, each listed
benchmark's group and recommended shots, and a digest of its inputs. ``extend`` keeps the history
bounded (the last ``MAX_ENTRIES``) and idempotent: re-reducing the same inputs replaces an entry
instead of adding one. ``changes`` says what moved, e.g. ``piqa: noise (3 ckpts) → robust (5 ckpts)``.

Where it lives: ``status.history`` of the CalibrationRun (the reducer writes it with the
classification, ``benchcal.publish``), and ``<results>/history.json`` for ``benchcal run``
(``benchcal.layout.history_file``). Both hold the same camelCase entries (``to_status``). Plain
data and pure functions only; reading and writing them is the callers' business.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from benchcal.classification import GROUPS, MAX_BENCHMARKS, StatusClassification
from benchcal.errors import BadInput

MAX_ENTRIES = 20  # status.history maxItems: a run's status must stay small in etcd
MAX_CHECKPOINTS = 128  # = spec.checkpoints maxItems (the CRD)
MAX_CHECKPOINT_NAME = 40  # = spec.checkpoints[].name maxLength
LAST_CHANGE_MAX = 256  # status.lastChange maxLength (a printer column)
FILE_SCHEMA = "benchcal.history/v1"  # the local history.json


@dataclass(frozen=True)
class Verdict:
    name: str
    group: str
    recommended_shots: int | None = None

    def label(self) -> str:
        return (
            self.group if self.recommended_shots is None else f"{self.group}, {self.recommended_shots}-shot"
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One reduction: ``generation`` of the spec, the ``checkpoints`` reduced over (FLOPs order),
    the listed verdicts (at most MAX_BENCHMARKS, ``truncated`` when the run has more), and
    ``inputs``, the digest of (checkpoints, benchmark/shot pairs) that says whether two
    reductions saw the same data."""

    generation: int
    checkpoints: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    inputs: str
    truncated: bool = False

    @property
    def count(self) -> int:
        return len(self.checkpoints)

    def by_name(self) -> dict[str, Verdict]:
        return {v.name: v for v in self.verdicts}

    def to_status(self) -> dict[str, Any]:
        """The entry as ``status.history[]`` holds it (camelCase, JSON-ready)."""
        return {
            "generation": int(self.generation),
            "inputs": self.inputs,
            "checkpoints": self.count,
            "checkpointNames": list(self.checkpoints),
            "benchmarks": [
                {"name": v.name, "group": v.group}
                | ({} if v.recommended_shots is None else {"recommendedShots": int(v.recommended_shots)})
                for v in self.verdicts
            ],
            "truncated": bool(self.truncated),
        }

    @classmethod
    def from_status(cls, item: Mapping[str, Any], where: str = "status.history[]") -> HistoryEntry:
        """Read one entry back; BadInput naming the field for any other shape."""
        if not isinstance(item, Mapping):
            raise BadInput(f"{where}: expected an object")
        try:
            generation = item["generation"]
            if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
                raise BadInput(f"{where}.generation: expected an integer >= 0, got {generation!r}")
            names = item["checkpointNames"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BadInput(f"{where}.checkpointNames: expected a list of names")
            if "checkpoints" in item and item["checkpoints"] != len(names):
                raise BadInput(
                    f"{where}.checkpoints: {item['checkpoints']!r} but {len(names)} checkpointNames"
                )
            verdicts = []
            for i, b in enumerate(item.get("benchmarks") or []):
                at = f"{where}.benchmarks[{i}]"
                if not isinstance(b, Mapping):
                    raise BadInput(f"{at}: expected an object")
                if b.get("group") not in GROUPS:
                    raise BadInput(f"{at}.group: {b.get('group')!r} is not one of {list(GROUPS)}")
                shots = b.get("recommendedShots")
                if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int)):
                    raise BadInput(f"{at}.recommendedShots: expected an integer, got {shots!r}")
                verdicts.append(Verdict(str(b["name"]), str(b["group"]), shots))
            return cls(
                generation=generation,
                checkpoints=tuple(names),
                verdicts=tuple(verdicts),
                inputs=str(item["inputs"]),
                truncated=bool(item.get("truncated", False)),
            )
        except KeyError as exc:
            raise BadInput(f"{where}: missing field {exc.args[0]!r}") from None


def inputs_digest(checkpoints: Iterable[str], pairs: Iterable[tuple[str, int]]) -> str:
    """What a reduction read, as 16 hex digits: the checkpoint names and (benchmark, shots) pairs
    (order-free). Equal digests = the same data reduced again."""
    doc = {"checkpoints": sorted(set(checkpoints)), "pairs": sorted({(str(b), int(k)) for b, k in pairs})}
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()[:16]


def make_entry(
    classification: StatusClassification,
    *,
    generation: int,
    checkpoints: Sequence[str],
    pairs: Iterable[tuple[str, int]],
) -> HistoryEntry:
    """The entry of one reduction, from its bounded status classification."""
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise BadInput(f"--generation must be an integer >= 0, got {generation!r}")
    if len(checkpoints) > MAX_CHECKPOINTS:
        raise BadInput(f"history: {len(checkpoints)} checkpoints; a run holds at most {MAX_CHECKPOINTS}")
    long = [c for c in checkpoints if len(c) > MAX_CHECKPOINT_NAME]
    if long:
        raise BadInput(
            f"history: checkpoint name {long[0]!r} is longer than {MAX_CHECKPOINT_NAME} characters"
        )
    verdicts = tuple(
        Verdict(b.name, b.group, b.recommended_shots) for b in classification.benchmarks[:MAX_BENCHMARKS]
    )
    return HistoryEntry(
        generation=generation,
        checkpoints=tuple(checkpoints),
        verdicts=verdicts,
        inputs=inputs_digest(checkpoints, pairs),
        truncated=classification.truncated or len(classification.benchmarks) > MAX_BENCHMARKS,
    )


def next_generation(history: Sequence[HistoryEntry], inputs: str) -> int:
    """For ``benchcal run`` (no metadata.generation): the last generation + 1 when the inputs
    changed, else the same; 1 for the first reduction."""
    if not history:
        return 1
    last = history[-1]
    return last.generation if last.inputs == inputs else last.generation + 1


def extend(
    history: Sequence[HistoryEntry], entry: HistoryEntry, limit: int = MAX_ENTRIES
) -> tuple[HistoryEntry, ...]:
    """``history`` with ``entry``, in generation order, at most ``limit`` entries (the newest).

    An entry of the same generation is replaced (the reducer re-ran), and consecutive entries
    that reduced the same inputs collapse into the later one (a spec change that touched no
    input, e.g. ``suspend``): re-reducing never adds a duplicate, and extend is idempotent.
    """
    if limit < 1:
        raise BadInput(f"history limit must be >= 1, got {limit}")
    ordered = sorted(
        [e for e in history if e.generation != entry.generation] + [entry], key=lambda e: e.generation
    )
    kept: list[HistoryEntry] = []
    for e in ordered:
        if kept and kept[-1].inputs == e.inputs:
            kept[-1] = e
        else:
            kept.append(e)
    return tuple(kept[-limit:])


def changes(history: Sequence[HistoryEntry]) -> list[str]:
    """One line per benchmark whose group changed between consecutive entries, oldest first:
    ``piqa: noise (3 ckpts) → robust (5 ckpts)``. A benchmark absent from either entry (added
    later, or beyond the listed MAX_BENCHMARKS) has no change to tell."""
    lines = []
    for before, after in pairwise(history):
        old = before.by_name()
        for v in after.verdicts:
            was = old.get(v.name)
            if was is not None and was.group != v.group:
                lines.append(
                    f"{v.name}: {was.group} ({before.count} ckpts) → {v.group} ({after.count} ckpts)"
                )
    return lines


def last_change(history: Sequence[HistoryEntry], limit: int = LAST_CHANGE_MAX) -> str:
    """One line for ``status.lastChange`` (a printer column): the verdicts that changed in the
    newest entry, or that none did; "" before there are two entries."""
    if len(history) < 2:
        return ""
    before, after = history[-2], history[-1]
    lines = changes([before, after])
    if not lines:
        return f"no verdict changed ({before.count} → {after.count} ckpts)"
    text = "; ".join(lines)
    if len(text) <= limit:
        return text
    shown: list[str] = []
    for i, line in enumerate(lines):
        more = f"; +{len(lines) - i} more"
        if len("; ".join([*shown, line])) + len(f"; +{len(lines) - i - 1} more") > limit:
            return ("; ".join(shown) + more) if shown else (line[: limit - len(more) - 3] + "..." + more)
        shown.append(line)
    return "; ".join(shown)  # not reached: the whole text was too long


def to_status(history: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    return [e.to_status() for e in history]


def from_status(items: Any, where: str = "status.history") -> tuple[HistoryEntry, ...]:
    """``status.history`` (or the ``history`` list of the local file) read back; None = empty."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise BadInput(f"{where}: expected a list")
    entries = tuple(HistoryEntry.from_status(item, f"{where}[{i}]") for i, item in enumerate(items))
    return tuple(sorted(entries, key=lambda e: e.generation))


def file_text(history: Sequence[HistoryEntry]) -> str:
    """The local history file (``benchcal.layout.history_file``)."""
    return json.dumps({"schemaVersion": FILE_SCHEMA, "history": to_status(history)}, indent=2) + "\n"


def parse_file(text: str, where: str) -> tuple[HistoryEntry, ...]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != FILE_SCHEMA:
        raise BadInput(f"{where}: not a benchcal history file (schemaVersion {FILE_SCHEMA!r} expected)")
    return from_status(doc.get("history"), f"{where}: history")
