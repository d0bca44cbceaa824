"""The verdicts per generation: `benchcal reduce --history/--generation`, and the table in
report.md, index.html and summary.json."""

from __future__ import annotations

import json
import re
import sys
import types

from benchcal import history
from benchcal.app.cli import main
from benchcal.classification import StatusClassification
from benchcal.results import CheckpointSummary, TaskResult
from benchcal_reduce.history_report import ABSENT, history_html, history_markdown

from .tables import make_table

# "late" is at chance on the first three checkpoints and rises on the next two: noise -> robust
SERIES = {
    ("late", 0): [0.25, 0.25, 0.26, 0.40, 0.50],
    ("late", 5): [0.25, 0.26, 0.25, 0.42, 0.52],
    ("good", 0): [0.30, 0.36, 0.42, 0.48, 0.55],
    ("good", 5): [0.32, 0.38, 0.44, 0.50, 0.56],
}


def _csv(tmp_path, n_checkpoints: int, series=SERIES):
    path = tmp_path / f"in{n_checkpoints}.csv"
    make_table({k: v[:n_checkpoints] for k, v in series.items()}).to_csv(path, index=False)
    return path


def _reduce(tmp_path, n_checkpoints: int, *extra: str, series=SERIES) -> int:
    out = tmp_path / "report"
    argv = ["reduce", str(_csv(tmp_path, n_checkpoints, series)), "--out", str(out), "--no-figures"]
    return main([*argv, "--bootstrap", "0", "--history", str(tmp_path / "history.json"), *extra])


def _history(tmp_path) -> tuple[history.HistoryEntry, ...]:
    return history.parse_file((tmp_path / "history.json").read_text(), "history.json")


def test_a_growing_input_extends_the_local_history_once_per_change(tmp_path, capsys):
    assert _reduce(tmp_path, 3) == 0
    (first,) = _history(tmp_path)
    assert (first.generation, first.checkpoints) == (1, ("c0", "c1", "c2"))
    assert {v.name: v.group for v in first.verdicts} == {"good": "robust", "late": "noise"}
    assert _reduce(tmp_path, 3) == 0  # the same inputs again: the same generation, no second entry
    assert _history(tmp_path) == (first,)
    capsys.readouterr()
    assert _reduce(tmp_path, 5) == 0
    h = _history(tmp_path)
    assert [(e.generation, e.count) for e in h] == [(1, 3), (2, 5)]
    captured = capsys.readouterr()
    assert "changed since generation 1: late: noise (3 ckpts) → robust (5 ckpts)" in captured.out
    assert "generation 2: 5 checkpoints, history of 2 reduction(s)" in captured.err
    report = tmp_path / "report"
    md = (report / "report.md").read_text()
    assert "## Verdicts per generation" in md
    assert "| benchmark | gen 1 (3 ckpts) | gen 2 (5 ckpts) |" in md
    assert "| late | noise | robust, 0-shot |" in md and "| good | robust, 0-shot | robust, 0-shot |" in md
    assert "- late: noise (3 ckpts) → robust (5 ckpts)" in md
    summary = json.loads((report / "summary.json").read_text())["history"]
    assert summary["changes"] == ["late: noise (3 ckpts) → robust (5 ckpts)"]
    assert [e["generation"] for e in summary["entries"]] == [1, 2]
    page = (report / "index.html").read_text()
    assert '<th data-generation="2">gen 2 (5 ckpts)</th>' in page
    assert "<li>late: noise (3 ckpts) → robust (5 ckpts)</li>" in page
    # a removed checkpoint is a new reduction input: generation 3, over four checkpoints
    assert _reduce(tmp_path, 4) == 0
    assert [(e.generation, e.count) for e in _history(tmp_path)] == [(1, 3), (2, 5), (3, 4)]


def test_an_explicit_generation_and_a_new_benchmark(tmp_path):
    assert _reduce(tmp_path, 5, "--generation", "7") == 0
    more = {**SERIES, ("extra", 0): [0.25, 0.25, 0.25, 0.26, 0.25]}
    assert _reduce(tmp_path, 5, "--generation", "8", series=more) == 0
    h = _history(tmp_path)
    assert [e.generation for e in h] == [7, 8] and history.changes(h) == []
    md = (tmp_path / "report" / "report.md").read_text()
    assert f"| extra | {ABSENT} | noise |" in md and "No verdict changed between generations." in md


def test_bad_history_input_is_named_and_nothing_is_written(tmp_path, capsys):
    (tmp_path / "history.json").write_text('{"schemaVersion": "benchcal.history/v1", "history": [{}]}')
    assert _reduce(tmp_path, 3) == 2
    assert "history.json: history[0]: missing field 'generation'" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()  # refused before any work
    assert _reduce(tmp_path, 3, "--write-status", "ns/run") == 2
    assert "at most one of --history" in capsys.readouterr().err
    (tmp_path / "history.json").unlink()
    assert _reduce(tmp_path, 3, "--generation", "-1") == 2


def test_without_a_history_the_report_shows_this_reduction_as_its_one_generation(tmp_path):
    out = tmp_path / "report"
    assert (
        main(["reduce", str(_csv(tmp_path, 3)), "--out", str(out), "--no-figures", "--bootstrap", "0"]) == 0
    )
    md = (out / "report.md").read_text()
    assert "| benchmark | gen 1 (3 ckpts) |" in md and "No verdict changed" in md


def _entry(generation: int, **groups: str) -> history.HistoryEntry:
    from benchcal.classification import BenchmarkVerdict

    cls = StatusClassification.from_verdicts(BenchmarkVerdict(n, g) for n, g in groups.items())
    return history.make_entry(
        cls, generation=generation, checkpoints=["a", "b", "c"], pairs=[("x", generation)]
    )


def test_the_sections_escape_names_and_are_empty_without_history():
    assert history_markdown(()) == [] and history_html(()) == ""
    h = history.extend((_entry(1, **{"a<b": "noise"}),), _entry(2, **{"a<b": "robust"}))
    page = history_html(h)
    assert "a&lt;b" in page and "a<b" not in page
    assert re.search(r'<td data-group="robust" style="color:#1b7837;font-weight:bold">robust</td>', page)


def _fake_publish(monkeypatch, summaries, status_history):
    calls: dict = {}
    mod = types.ModuleType("benchcal.publish")
    mod.collect_summaries = lambda target: summaries
    mod.read_run_history = lambda target: calls.setdefault("read", target) and status_history

    def write_run_status(target, classification, ref, entry=None):
        calls["status"] = (target, classification, ref, entry)
        return history.extend(status_history, entry)

    mod.write_run_status = write_run_status
    monkeypatch.setitem(sys.modules, "benchcal.publish", mod)
    return calls


def _summary(i: int, acc: float) -> CheckpointSummary:
    result = TaskResult(
        benchmark="arc_easy", category="world_knowledge", task_type="multiple_choice", num_fewshot=0,
        metric="acc", accuracy=acc, n=2000, stderr=0.01, random_baseline=0.25,
    )  # fmt: skip
    return CheckpointSummary(checkpoint=f"s{i}", model={}, flops=10.0 ** (20 + i), results=[result])


def test_the_reducer_job_extends_status_history_under_its_generation(tmp_path, monkeypatch):
    earlier = (_entry(2, arc_easy="noise"),)
    summaries = [_summary(i, acc) for i, acc in enumerate([0.3, 0.4, 0.5, 0.6])]
    calls = _fake_publish(monkeypatch, summaries, earlier)
    out = tmp_path / "out"
    argv = ["reduce", "--from-configmaps", "ns/run", "--write-status", "ns/run", "--generation", "3"]
    assert main([*argv, "--out", str(out), "--no-figures", "--bootstrap", "0"]) == 0
    assert calls["read"] == "ns/run"
    target, classification, _, entry = calls["status"]
    assert target == "ns/run" and entry.generation == 3 and entry.checkpoints == ("s0", "s1", "s2", "s3")
    assert [(v.name, v.group) for v in entry.verdicts] == [
        (b.name, b.group) for b in classification.benchmarks
    ]
    md = (out / "report.md").read_text()
    assert "| arc_easy | noise | robust, 0-shot |" in md
    assert "- arc_easy: noise (3 ckpts) → robust (4 ckpts)" in md
