"""The progress snapshot and its estimates: plain data, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchcal.progress import (
    PHASE_BUILDING,
    PHASE_EVALUATING,
    PHASE_FINISHED,
    PHASE_LOADING,
    Snapshot,
    checkpoint_eta,
    checkpoint_line,
    format_seconds,
    read_snapshot,
    run_eta,
    run_line,
    write_snapshot,
)


def test_snapshot_round_trips_and_ignores_unknown_keys(tmp_path: Path) -> None:
    snap = Snapshot("s3", PHASE_EVALUATING, "arc_easy 3-shot", 40, 100, 4.0, pairs_total=6, pairs_finished=2)
    path = tmp_path / "s3.progress.json"
    write_snapshot(path, snap)
    assert read_snapshot(path) == snap
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed, not left behind
    path.write_text(snap.to_json()[:-1] + ', "from_a_newer_version": 1}')
    assert read_snapshot(path) == snap


@pytest.mark.parametrize("content", [None, "", "{not json", "[1, 2]", '{"phase": "x"}'])
def test_a_missing_or_foreign_file_reads_as_no_snapshot(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    assert read_snapshot(path) is None


def test_checkpoint_eta_before_any_pair_finished_projects_the_current_one() -> None:
    # 40 of 100 requests in 10 s at 4 req/s: 15 s left here; 2 more pairs of ~25 s each
    snap = Snapshot("s1", PHASE_EVALUATING, "copa 0-shot", 40, 100, 4.0, pairs_total=3, item_seconds=10.0)
    assert checkpoint_eta(snap) == pytest.approx(15 + 2 * 25)


def test_checkpoint_eta_uses_the_mean_of_the_pairs_finished_here_not_the_resumed_ones() -> None:
    snap = Snapshot(
        "s1", PHASE_EVALUATING, "copa 3-shot", 10, 20, 2.0,
        pairs_total=6, pairs_finished=3, pairs_resumed=1, evaluated_seconds=30.0,
    )  # fmt: skip
    # 5 s for this pair, then 2 pairs at (30 s / 2 evaluated here) each
    assert checkpoint_eta(snap) == pytest.approx(5 + 2 * 15)


def test_checkpoint_eta_of_the_scored_pass_does_not_count_its_own_pairs_twice() -> None:
    # one pass over 4 of 5 pairs: 60 of 100 requests at 2 req/s (20 s left), 1 of its pairs done;
    # after it only the fifth pair, at the mean time of the pairs finished (12 s for one)
    snap = Snapshot(
        "s1", PHASE_EVALUATING, "4 scored pairs", 60, 100, 2.0,
        pairs_total=5, pairs_finished=1, item_pairs=3, item_seconds=30.0, evaluated_seconds=12.0,
    )  # fmt: skip
    assert checkpoint_eta(snap) == pytest.approx(20 + 1 * 12)  # not 20 + 3 pairs after it
    done = Snapshot(
        "s1", PHASE_EVALUATING, "jeopardy 0-shot", 5, 10, 1.0,
        pairs_total=5, pairs_finished=4, item_pairs=1, evaluated_seconds=50.0,
    )  # fmt: skip
    assert checkpoint_eta(done) == pytest.approx(5.0)  # the last pair: its own rate, nothing after


@pytest.mark.parametrize(
    ("phase", "rate", "expected"),
    [(PHASE_LOADING, 0.0, None), (PHASE_EVALUATING, 0.0, None), (PHASE_FINISHED, 0.0, 0.0)],
)
def test_checkpoint_eta_is_unknown_until_measured(phase: str, rate: float, expected: float | None) -> None:
    assert checkpoint_eta(Snapshot("s1", phase, "", 0, 10, rate, pairs_total=2)) == expected


def test_run_eta_spreads_the_work_left_over_the_running_checkpoints() -> None:
    # two finished at 100 s; one running 50 s in with 50 s left; two waiting at ~100 s each
    assert run_eta([100.0, 100.0], [(50.0, 50.0)], waiting=2) == pytest.approx(50 + 2 * 100)
    # parallel: two running, the work left is shared between them
    assert run_eta([], [(10.0, 30.0), (10.0, 10.0)], waiting=1) == pytest.approx((30 + 10 + 30) / 2)
    assert run_eta([100.0], [(5.0, None)], waiting=0) is None  # a running one not measured yet
    assert run_eta([], [], waiting=3) is None
    assert run_eta([10.0, 12.0], [], waiting=0) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (float("inf"), "?"), (4.4, "4s"), (75, "1m15s"), (7322, "2h02m")]
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


def test_lines_name_checkpoint_pair_rate_and_etas() -> None:
    snap = Snapshot("s2", PHASE_EVALUATING, "piqa 5-shot", 30, 120, 6.0, pairs_total=4, pairs_finished=1,
                    item_seconds=5.0)  # fmt: skip
    line = checkpoint_line(snap)
    assert line.startswith("s2: pair 2/4 piqa 5-shot 30/120 req 6.0 req/s ETA checkpoint")
    assert checkpoint_line(Snapshot("s1", PHASE_BUILDING, "tiny series", 100, 400, 20.0, unit="steps")) == (
        "s1: building tiny series (tiny series) 100/400 steps 20.0 steps/s ETA build 15s"
    )
    assert checkpoint_line(Snapshot("s1", PHASE_LOADING, "/m/s1")) == "s1: loading model (/m/s1)"
    assert (
        run_line(2, 1, 5, 90.0, 61.0) == "run: 2/5 checkpoints done, 1 failed, 1m01s elapsed, ETA run 1m30s"
    )


def test_checkpoint_eta_of_a_pair_just_started_assumes_the_mean_pair() -> None:
    snap = Snapshot("s1", PHASE_EVALUATING, "copa 5-shot", 0, 50, 0.0, pairs_total=4, pairs_finished=2,
                    evaluated_seconds=20.0, item_seconds=1.0)  # fmt: skip
    assert checkpoint_eta(snap) == pytest.approx((10 - 1) + 1 * 10)
