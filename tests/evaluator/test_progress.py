"""The evaluator's progress reporter: log lines for Job logs, snapshots for `benchcal run`'s display."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchcal.app.cli import main
from benchcal.progress import (
    PHASE_BUILDING,
    PHASE_EVALUATING,
    PHASE_FINISHED,
    PHASE_LOADING,
    PROGRESS_FILE_ENV,
    read_snapshot,
)
from benchcal_eval.progress import ProgressReporter
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("benchcal_eval.progress.time.monotonic", c)
    return c


def test_progress_lines_show_rate_and_eta(clock: Clock) -> None:
    reporter = ProgressReporter(tty=False)
    reporter.start("arc_easy 3-shot", 100)
    reporter.done = 50
    assert reporter.line(10.0) == "arc_easy 3-shot: 50/100 requests (5.0 req/s, ETA 10s)"


def test_a_log_line_every_interval_off_a_terminal(clock: Clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    reporter = ProgressReporter(tty=False)
    reporter.start("copa 0-shot", 100)
    for t in (1.0, 29.0, 31.0, 45.0, 62.0):
        clock.now = t
        reporter.advance(10)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "copa 0-shot: 30/100 requests (1.0 req/s, ETA 72s)",
        "copa 0-shot: 50/100 requests (0.8 req/s, ETA 62s)",
    ]


def test_snapshots_follow_the_phases_and_pairs(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "s1.progress.json"
    reporter = ProgressReporter(tty=False, snapshot_path=str(path))
    reporter.begin("s1", pairs_total=3)
    reporter.loading("/models/s1")
    assert read_snapshot(path).phase == PHASE_LOADING
    reporter.skip("copa 0-shot")  # resumed from an earlier run
    reporter.start("copa 1-shot", 40)
    clock.now = 4.0
    reporter.advance(20)
    snap = read_snapshot(path)
    assert (snap.phase, snap.label, snap.done, snap.total, snap.rate) == (
        PHASE_EVALUATING,
        "copa 1-shot",
        20,
        40,
        5.0,
    )
    assert (snap.pairs_total, snap.pairs_finished, snap.pairs_resumed) == (3, 1, 1)
    clock.now = 8.0
    reporter.advance(20)
    reporter.finish()
    reporter.start("copa 3-shot", 10)  # this one raises in the runner: finish is never called
    clock.now = 9.0
    reporter.finished(requests_scored=42)  # the engine's count, from benchcal_eval.cli
    snap = read_snapshot(path)
    assert snap.phase == PHASE_FINISHED
    assert (snap.pairs_finished, snap.pairs_resumed, snap.evaluated_seconds) == (3, 1, 9.0)
    assert snap.requests_scored == 42


def test_writes_are_throttled_but_phase_changes_are_not(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "p.json"
    reporter = ProgressReporter(tty=False, snapshot_path=str(path))
    reporter.begin("s1", 1)
    reporter.start("copa 0-shot", 100)
    clock.now = 0.1
    reporter.advance(1)  # within WRITE_EVERY_S of the forced write at start
    assert read_snapshot(path).done == 0
    clock.now = 0.5
    reporter.advance(1)
    assert read_snapshot(path).done == 2
    reporter.building(1, 10, 0.5)  # not forced: throttled too
    assert read_snapshot(path).phase == PHASE_EVALUATING
    reporter.building(10, 10, 1.0)  # the last step always lands
    assert read_snapshot(path).phase == PHASE_BUILDING


def test_an_unwritable_progress_file_warns_once_and_the_evaluation_goes_on(tmp_path: Path, caplog) -> None:
    reporter = ProgressReporter(tty=False, snapshot_path=str(tmp_path / "no-such-dir" / "p.json"))
    reporter.begin("s1", 1)
    reporter.start("copa 0-shot", 2)
    reporter.advance(2)
    reporter.finish()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no-such-dir" in warnings[0]


def test_benchcal_evaluate_writes_the_file_it_is_given(tmp_path: Path, monkeypatch) -> None:
    tasks = write_tiny_tasks(tmp_path / "tasks")
    path = tmp_path / "s1.progress.json"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(path))
    argv = ["evaluate", "--model", str(tiny_checkpoint_dir()), "--tasks", "tiny_mc", "--shots", "0,1",
            "--task-file", str(tasks), "--out", str(tmp_path / "out"), "--device", "cpu", "--checkpoint", "s1"]  # fmt: skip
    assert main(argv) == 0
    snap = read_snapshot(path)
    assert (snap.checkpoint, snap.phase, snap.pairs_total, snap.pairs_finished, snap.pairs_resumed) == (
        "s1", PHASE_FINISHED, 2, 2, 0
    )  # fmt: skip
    assert main(argv) == 0  # a re-run resumes both pairs, and says so
    snap = read_snapshot(path)
    assert (snap.pairs_finished, snap.pairs_resumed) == (2, 2)


def test_the_scored_pass_counts_its_pairs_as_they_finish(tmp_path: Path, clock: Clock) -> None:
    # the runner scores every scored pair of a checkpoint in one pass: one start covering them all
    path = tmp_path / "s1.progress.json"
    reporter = ProgressReporter(tty=False, snapshot_path=str(path))
    reporter.begin("s1", pairs_total=4)
    reporter.start("3 scored pairs", 90, pairs=3)
    clock.now = 3.0
    reporter.advance(30)
    reporter.pair_done("copa 0-shot")
    snap = read_snapshot(path)
    assert (snap.pairs_finished, snap.item_pairs, snap.done, snap.total) == (1, 2, 30, 90)
    assert snap.evaluated_seconds == 3.0  # the first pair's share of the pass
    reporter.pair_done("copa 1-shot")
    clock.now = 9.0
    reporter.advance(60)
    reporter.finish()  # the third pair failed with the pass: finished all the same
    snap = read_snapshot(path)
    assert (snap.pairs_finished, snap.item_pairs, snap.evaluated_seconds) == (3, 0, 9.0)
    reporter.start("jeopardy 0-shot", 10)  # a generation pair after the pass
    assert read_snapshot(path).item_pairs == 1
