"""The evaluator's progress: a tqdm bar on a terminal, a log line every LOG_EVERY_S otherwise (Job
logs), and, when ``BENCHCAL_PROGRESS_FILE`` is set (``benchcal run`` sets it), a snapshot file the
parent renders in its own display (``benchcal.progress``).

One reporter per process (``reporter()``): the model load and the tiny series' build report into
the same one the runner does, without threading a callback through every call in between.
``Progress`` is the protocol the runner reports into; ``ProgressReporter`` implements it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import replace
from typing import Any, Protocol

from benchcal.progress import (
    PHASE_BUILDING,
    PHASE_EVALUATING,
    PHASE_FINISHED,
    PHASE_LOADING,
    PHASE_WAITING,
    PROGRESS_FILE_ENV,
    Snapshot,
    write_snapshot,
)

log = logging.getLogger("benchcal.evaluate")

LOG_EVERY_S = 30.0  # progress line interval when stderr is not a terminal (Job logs)
WRITE_EVERY_S = 0.25  # snapshot file refresh: often enough to look live, rare enough to cost nothing


class Progress(Protocol):
    """Where the runner reports work: ``skip`` per pair resumed from disk; one ``start`` per unit
    of work (the scored pass, covering ``pairs`` pairs, or one generation pair), ``advance`` per
    finished request, ``pair_done`` per pair of the unit finished (written or failed), ``finish``."""

    def skip(self, label: str) -> None: ...
    def start(self, label: str, total: int, pairs: int = 1) -> None: ...
    def advance(self, n: int) -> None: ...
    def pair_done(self, label: str) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    """``Progress`` that reports nothing (a caller that passes none)."""

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


class ProgressReporter:
    """Implements ``Progress``, plus the phases before the first pair."""

    def __init__(self, tty: bool | None = None, snapshot_path: str | None = None) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.path = snapshot_path
        self.bar: Any = None
        self.active = False  # between start and finish; a pair that raised never finishes
        self.label, self.total, self.done = "", 0, 0
        self.t0 = self.last = self.last_write = self.t_pair = 0.0
        self.snap = Snapshot(checkpoint="")

    # ---- phases ----------------------------------------------------------------------------------

    def begin(self, checkpoint: str, pairs_total: int) -> None:
        self.snap = replace(self.snap, checkpoint=checkpoint, pairs_total=pairs_total)
        self._write(force=True)

    def loading(self, source: str) -> None:
        self.snap = replace(self.snap, phase=PHASE_LOADING, label=source, done=0, total=0, rate=0.0)
        self._write(force=True)

    def building(self, step: int, total_steps: int, elapsed: float) -> None:
        """The tiny series' training loop: ``step`` of ``total_steps`` optimizer steps."""
        rate = step / elapsed if elapsed > 0 else 0.0
        self.snap = replace(
            self.snap, phase=PHASE_BUILDING, label="tiny series", done=step, total=total_steps,
            rate=rate, unit="steps", item_seconds=elapsed,
        )  # fmt: skip
        self._write(force=step == total_steps)

    def waiting(self, why: str) -> None:
        self.snap = replace(self.snap, phase=PHASE_WAITING, label=why, done=0, total=0, rate=0.0)
        self._write(force=True)

    def finished(self, requests_scored: int = 0) -> None:
        """The process is done; ``requests_scored``: what its engine scored (none: all resumed)."""
        if self.active:
            self.finish()
        self.snap = replace(
            self.snap, phase=PHASE_FINISHED, done=0, total=0, rate=0.0, requests_scored=requests_scored
        )
        self._write(force=True)

    # ---- the Progress protocol ----------------------------------------------------------------

    def skip(self, label: str) -> None:
        """A pair already finished by an earlier run (resumed): counted, not timed."""
        self.snap = replace(
            self.snap, pairs_finished=self.snap.pairs_finished + 1, pairs_resumed=self.snap.pairs_resumed + 1
        )
        self._write(force=True)

    def start(self, label: str, total: int, pairs: int = 1) -> None:
        """Work on ``pairs`` pairs begins: one generation pair, or the checkpoint's one scored
        pass (all its scored pairs, finishing one by one: ``pair_done``)."""
        if self.active:  # the previous pair failed: it is over all the same
            self.finish()
        self.active = True
        self.label, self.total, self.done = label, total, 0
        self.t0 = self.last = self.t_pair = time.monotonic()
        self.snap = replace(
            self.snap, phase=PHASE_EVALUATING, label=label, done=0, total=total, rate=0.0, unit="req",
            item_seconds=0.0, item_pairs=pairs,
        )  # fmt: skip
        self._write(force=True)
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="req", dynamic_ncols=True, leave=False)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.path is not None:
            elapsed = now - self.t0
            self.snap = replace(
                self.snap,
                done=self.done,
                rate=self.done / elapsed if elapsed > 0 else 0.0,
                item_seconds=elapsed,
            )
            self._write(now=now)
        if self.bar is not None:
            self.bar.update(n)
            return
        if now - self.last >= LOG_EVERY_S:
            self.last = now
            log.info("%s", self.line(now))

    def pair_done(self, label: str) -> None:
        """One pair of the current unit of work finished (written or failed) before the unit did."""
        if self.snap.item_pairs > 0:
            now = time.monotonic()  # the time since the previous pair finished is this pair's
            self.snap = replace(
                self.snap,
                pairs_finished=self.snap.pairs_finished + 1,
                item_pairs=self.snap.item_pairs - 1,
                evaluated_seconds=self.snap.evaluated_seconds + now - self.t_pair,
            )
            self.t_pair = now
            self._write(force=True)

    def finish(self) -> None:
        """The unit of work is over: its pairs not reported by ``pair_done`` count as finished."""
        self.active = False
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elapsed = time.monotonic() - self.t_pair
        self.snap = replace(
            self.snap,
            pairs_finished=self.snap.pairs_finished + self.snap.item_pairs,
            item_pairs=0,
            evaluated_seconds=self.snap.evaluated_seconds + elapsed,
        )
        self._write(force=True)

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_s = f"{eta:.0f}s" if eta != float("inf") else "?"
        return f"{self.label}: {self.done}/{self.total} requests ({rate:.1f} req/s, ETA {eta_s})"

    def _write(self, *, force: bool = False, now: float | None = None) -> None:
        if self.path is None:
            return
        now = time.monotonic() if now is None else now
        if not force and now - self.last_write < WRITE_EVERY_S:
            return
        self.last_write = now
        try:
            write_snapshot(self.path, self.snap)
        except OSError as exc:  # the display is a convenience; the evaluation must go on
            log.warning("cannot write the progress file %s: %s (progress display disabled)", self.path, exc)
            self.path = None


_REPORTER: ProgressReporter | None = None


def new_reporter() -> ProgressReporter:
    """A fresh reporter for this evaluation (snapshot file from the environment), made current."""
    global _REPORTER
    _REPORTER = ProgressReporter(snapshot_path=os.environ.get(PROGRESS_FILE_ENV) or None)
    return _REPORTER


def reporter() -> ProgressReporter:
    """The current reporter: the model load and the tiny series' build report into it."""
    return _REPORTER if _REPORTER is not None else new_reporter()
