"""`benchcal run`'s live display, driven by snapshot files as the evaluators write them."""

from __future__ import annotations

import io
from pathlib import Path

from benchcal.app.run_display import CLEAR_LINE, RunDisplay
from benchcal.progress import PHASE_BUILDING, PHASE_EVALUATING, Snapshot, write_snapshot


def _snap(path: Path, **kw) -> None:
    write_snapshot(path, Snapshot(**kw))


def test_plain_output_prints_a_line_per_change_and_then_every_interval(tmp_path: Path) -> None:
    out = io.StringIO()
    display = RunDisplay(total=2, stream=out, tty=False, log_every=30.0)
    p1 = tmp_path / "s1.json"
    display.started("s1", p1)
    display.refresh(now=0.0)  # nothing written yet: "starting"
    _snap(
        p1,
        checkpoint="s1",
        phase=PHASE_BUILDING,
        label="tiny series",
        done=50,
        total=400,
        rate=25.0,
        unit="steps",
    )
    display.refresh(now=1.0)
    display.refresh(now=2.0)  # same phase and label: quiet
    _snap(
        p1,
        checkpoint="s1",
        phase=PHASE_EVALUATING,
        label="copa 0-shot",
        done=10,
        total=100,
        rate=5.0,
        pairs_total=2,
    )
    display.refresh(now=3.0)
    display.refresh(now=34.0)  # same pair, but 30 s later
    lines = out.getvalue().splitlines()
    assert lines == [
        "s1: starting",
        "s1: building tiny series (tiny series) 50/400 steps 25.0 steps/s ETA build 14s",
        "s1: pair 1/2 copa 0-shot 10/100 req 5.0 req/s ETA checkpoint 36s",
        "s1: pair 1/2 copa 0-shot 10/100 req 5.0 req/s ETA checkpoint 36s",
    ]
    assert CLEAR_LINE not in out.getvalue()


def test_terminal_output_redraws_one_block_in_place(tmp_path: Path) -> None:
    out = io.StringIO()
    display = RunDisplay(total=3, stream=out, tty=True)
    display.ended("s1", 20.0, ok=True)
    p2, p3 = tmp_path / "s2.json", tmp_path / "s3.json"
    display.started("s2", p2)
    display.started("s3", p3)
    _snap(
        p2,
        checkpoint="s2",
        phase=PHASE_EVALUATING,
        label="piqa 0-shot",
        done=5,
        total=10,
        rate=1.0,
        pairs_total=1,
    )
    _snap(
        p3,
        checkpoint="s3",
        phase=PHASE_EVALUATING,
        label="copa 0-shot",
        done=1,
        total=10,
        rate=1.0,
        pairs_total=1,
    )
    display.refresh()
    first = out.getvalue()
    assert first.count(CLEAR_LINE) == 3  # the run line and one line per running checkpoint
    assert "run: 1/3 checkpoints done" in first and "ETA run 7s" in first  # (5 + 9) s of work over 2 workers
    assert "s2: pair 1/1 piqa 0-shot 5/10 req" in first and "s3: pair 1/1 copa 0-shot" in first
    display.refresh()
    again = out.getvalue()[len(first) :]
    assert again.startswith("\x1b[3F")  # back up over the three lines before drawing them again
    display.event("checkpoint s2 done in 12.0 s")
    assert "checkpoint s2 done in 12.0 s\n" in out.getvalue()


def test_a_failed_checkpoint_counts_and_the_block_is_cleared_at_the_end(tmp_path: Path) -> None:
    out = io.StringIO()
    with RunDisplay(total=2, stream=out, tty=True, interval=3600) as display:
        display.started("s1", tmp_path / "s1.json")
        display.ended("s1", 3.0, ok=False)
        display.event("checkpoint s1 FAILED (exit 2)")
        assert display.lines(now=0.0)[0].startswith("run: 0/2 checkpoints done, 1 failed")
    assert out.getvalue().endswith("\x1b[1F")  # the live block is gone; only the event line stays
