"""Live progress of ``benchcal run``: what each evaluator process is doing, and the one display of it.

Each local evaluator is a subprocess whose terminal output goes to its log file, so it also keeps a
small JSON snapshot of its state in the file named by ``BENCHCAL_PROGRESS_FILE`` (replaced
atomically, at most a few times a second). ``benchcal run`` polls those files and renders one
display across checkpoints and pairs. Everything here is plain data and string formatting; the
writer lives in the evaluator (``benchcal_eval.progress``), the poller in ``benchcal.app``.

ETAs are estimates: the current pair's from its request rate, the rest of a checkpoint's from the
mean time of the pairs it finished (or, before the first, from the current pair's projected time),
the rest of the run assuming every remaining checkpoint costs what the checkpoints so far cost.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PROGRESS_FILE_ENV = "BENCHCAL_PROGRESS_FILE"

# what an evaluator process is doing, in the order it happens
PHASE_STARTING = "starting"
PHASE_WAITING = "waiting"
PHASE_BUILDING = "building tiny series"
PHASE_LOADING = "loading model"
PHASE_EVALUATING = "evaluating"
PHASE_FINISHED = "finished"


@dataclass(frozen=True)
class Snapshot:
    """One evaluator's state. ``done``/``total`` count the current item's units (requests, or
    optimizer steps while building the tiny series); ``rate`` is units per second on that item."""

    checkpoint: str
    phase: str = PHASE_STARTING
    label: str = ""  # "arc_easy 3-shot", "tiny series"
    done: int = 0
    total: int = 0
    rate: float = 0.0
    unit: str = "req"
    pairs_total: int = 0  # pairs this process was asked for
    pairs_finished: int = 0  # finished here or earlier (resumed)
    pairs_resumed: int = 0
    item_seconds: float = 0.0  # time spent on the current item so far
    item_pairs: int = 1  # pairs of the current item not finished yet (the scored pass covers many)
    evaluated_seconds: float = 0.0  # time spent on the pairs finished by this process
    # requests the engine scored in this process (scoring + generation), set when it finishes:
    # 0 = every pair was resumed from its result file and the model was not loaded
    requests_scored: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def write_snapshot(path: str | Path, snap: Snapshot) -> None:
    """Replace ``path`` atomically, so a reader never sees half a document."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(snap.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def read_snapshot(path: str | Path) -> Snapshot | None:
    """The last snapshot, or None while the process has written none yet."""
    try:
        return Snapshot.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AttributeError):  # written atomically: a foreign or damaged file
        return None


# ---- estimates -------------------------------------------------------------------------------------


def item_eta(snap: Snapshot) -> float | None:
    if snap.total <= 0 or snap.rate <= 0:
        return None
    return max(0, snap.total - snap.done) / snap.rate


def checkpoint_eta(snap: Snapshot) -> float | None:
    """Seconds left for this checkpoint, or None while nothing has been measured yet."""
    if snap.phase == PHASE_FINISHED:
        return 0.0
    if snap.phase != PHASE_EVALUATING:
        return None
    here = item_eta(snap)
    # pairs after the current item (the evaluator's scored pass is one item covering many pairs)
    after = max(0, snap.pairs_total - snap.pairs_finished - max(1, snap.item_pairs))
    evaluated_here = snap.pairs_finished - snap.pairs_resumed
    if evaluated_here > 0:
        per_pair = snap.evaluated_seconds / evaluated_here
        if here is None:  # a pair just started: assume it costs what the others did
            here = max(0.0, per_pair - snap.item_seconds)
    elif here is None:
        return None
    else:  # no pair finished yet: assume the others cost what this one will
        per_pair = snap.item_seconds + here
    return here + after * per_pair


def run_eta(
    finished_seconds: list[float], running: list[tuple[float, float | None]], waiting: int
) -> float | None:
    """Seconds left for the run: ``running`` holds (elapsed, eta) per running checkpoint.

    With parallel workers the checkpoints overlap, so this is the work left, divided by the
    number of checkpoints running at once."""
    etas = [eta for _, eta in running]
    if any(eta is None for eta in etas):
        return None
    costs = list(finished_seconds) + [elapsed + eta for elapsed, eta in running]  # type: ignore[operator]
    if waiting and not costs:
        return None
    per_checkpoint = sum(costs) / len(costs) if costs else 0.0
    left = sum(etas) + waiting * per_checkpoint  # type: ignore[arg-type]
    return left / max(1, len(running))


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isinf(seconds):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def checkpoint_line(snap: Snapshot) -> str:
    """One checkpoint's line: which checkpoint, which pair, how far, how fast, how long."""
    parts = [f"{snap.checkpoint}:"]
    if snap.phase == PHASE_EVALUATING:
        pair_no = min(snap.pairs_finished + 1, snap.pairs_total) if snap.pairs_total else 0
        parts.append(f"pair {pair_no}/{snap.pairs_total} {snap.label}")
    else:
        parts.append(snap.phase if not snap.label else f"{snap.phase} ({snap.label})")
    if snap.total:
        parts.append(f"{snap.done}/{snap.total} {snap.unit}")
    if snap.rate > 0:
        parts.append(f"{snap.rate:.1f} {snap.unit}/s")
    if snap.phase == PHASE_EVALUATING:
        parts.append(f"ETA checkpoint {format_seconds(checkpoint_eta(snap))}")
    elif snap.phase == PHASE_BUILDING:
        parts.append(f"ETA build {format_seconds(item_eta(snap))}")
    return " ".join(parts)


def run_line(done: int, failed: int, total: int, eta: float | None, elapsed: float) -> str:
    failed_part = f", {failed} failed" if failed else ""
    return (
        f"run: {done}/{total} checkpoints done{failed_part}, "
        f"{format_seconds(elapsed)} elapsed, ETA run {format_seconds(eta)}"
    )
