"""The live display of ``benchcal run``: one view across checkpoints and pairs.

Each evaluator subprocess writes its log to a file and its state to a progress snapshot
(``benchcal.progress``); a thread here polls the snapshots of the running checkpoints. On a
terminal it redraws a small block in place (a run line, then one line per running checkpoint);
otherwise it prints plain lines: one whenever a checkpoint changes phase or pair, and one every
``log_every`` seconds while it works.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from benchcal.progress import (
    PHASE_STARTING,
    Snapshot,
    checkpoint_eta,
    checkpoint_line,
    read_snapshot,
    run_eta,
    run_line,
)

CLEAR_LINE = "\x1b[2K"


def _up(n: int) -> str:
    return f"\x1b[{n}F" if n else ""  # to the start of the line n lines up


@dataclass
class _Running:
    path: Path
    started: float
    snap: Snapshot
    last_key: tuple = ()
    last_print: float = 0.0


@dataclass
class RunDisplay:
    total: int  # checkpoints in the run
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    interval: float = 0.5
    log_every: float = 30.0

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = self.stream.isatty()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._finished: list[float] = []
        self._failed = 0
        self._drawn = 0  # lines of the live block on screen
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> RunDisplay:
        self._thread = threading.Thread(target=self._loop, name="benchcal-run-display", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()

    def started(self, checkpoint: str, progress_path: Path) -> None:
        with self._lock:
            self._running[checkpoint] = _Running(
                progress_path, time.monotonic(), Snapshot(checkpoint=checkpoint, phase=PHASE_STARTING)
            )

    def ended(self, checkpoint: str, seconds: float, ok: bool) -> None:
        with self._lock:
            self._running.pop(checkpoint, None)
            if ok:
                self._finished.append(seconds)
            else:
                self._failed += 1

    def event(self, message: str) -> None:
        """A line that stays (a checkpoint started, finished or failed), printed above the live block."""
        with self._lock:
            self._clear()
            self.stream.write(message + "\n")
            self._draw()

    # ---- rendering ----------------------------------------------------------------------------

    def lines(self, now: float | None = None) -> list[str]:
        """The run line, then one line per running checkpoint (the caller holds the lock)."""
        now = time.monotonic() if now is None else now
        running = list(self._running.values())
        done = len(self._finished)
        waiting = self.total - done - self._failed - len(running)
        eta = run_eta(self._finished, [(now - r.started, checkpoint_eta(r.snap)) for r in running], waiting)
        out = [run_line(done, self._failed, self.total, eta, now - self._t0)]
        out += ["  " + checkpoint_line(r.snap) for r in running]
        return out

    def refresh(self, now: float | None = None) -> None:
        """Read the snapshots and redraw (terminal) or print what changed (plain output)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for r in self._running.values():
                snap = read_snapshot(r.path)
                if snap is not None:
                    r.snap = snap
            if self.tty:
                self._draw(now)  # in place, one write: no flicker
                return
            for r in self._running.values():
                key = (r.snap.phase, r.snap.label)
                if key != r.last_key or now - r.last_print >= self.log_every:
                    r.last_key, r.last_print = key, now
                    self.stream.write(checkpoint_line(r.snap) + "\n")
            self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write(_up(self._drawn) + "".join(CLEAR_LINE + "\n" for _ in range(self._drawn)))
            self.stream.write(_up(self._drawn))
            self._drawn = 0
        self.stream.flush()

    def _draw(self, now: float | None = None) -> None:
        """Draw the block over the one on screen (if any), clearing lines it no longer needs."""
        if not self.tty:
            return
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)  # a wrapped line breaks the redraw
        block = [line[:width] for line in self.lines(now)]
        text = _up(self._drawn) + "".join(CLEAR_LINE + line + "\n" for line in block)
        extra = self._drawn - len(block)
        if extra > 0:
            text += "".join(CLEAR_LINE + "\n" for _ in range(extra)) + _up(extra)
        self.stream.write(text)
        self.stream.flush()
        self._drawn = len(block)
