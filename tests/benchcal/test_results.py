"""benchcal.results: the one results schema, its paths inside a checkpoint directory, atomic I/O."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from benchcal.errors import BadInput
from benchcal.results import (
    SCHEMA_VERSION,
    TABLE_COLUMNS,
    CheckpointSummary,
    Failure,
    TaskResult,
    atomic_write_text,
    examples_path,
    load_task_results,
    read_summary,
    read_task_result,
    result_path,
    summary_path,
    summary_rows,
    write_summary,
    write_task_result,
)


def result(bench="arc_easy", shots=0, acc=0.5) -> TaskResult:
    return TaskResult(
        bench, "world_knowledge", "multiple_choice", shots, "acc", acc, 100, 0.05, 0.25, config_key="k"
    )


def test_paths_inside_a_checkpoint_directory(tmp_path):
    assert result_path(tmp_path, "arc_easy", 3) == tmp_path / "results" / "arc_easy" / "3shot.json"
    assert examples_path(tmp_path, "arc_easy", 3) == tmp_path / "examples" / "arc_easy" / "3shot.jsonl"
    assert summary_path(tmp_path) == tmp_path / "summary.json"


def test_task_result_round_trip_and_listing(tmp_path):
    for r in (result("piqa", 1), result("arc_easy", 5), result("arc_easy", 0)):
        assert write_task_result(tmp_path, r) == result_path(tmp_path, r.benchmark, r.num_fewshot)
    back = read_task_result(result_path(tmp_path, "piqa", 1))
    assert back == result("piqa", 1) and back.schema_version == SCHEMA_VERSION
    assert [(r.benchmark, r.num_fewshot) for r in load_task_results(tmp_path)] == [
        ("arc_easy", 0), ("arc_easy", 5), ("piqa", 1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accuracy": 1.5}, "accuracy must be in"),
        ({"accuracy": float("nan")}, "accuracy must be in"),
        ({"n": 0}, "n must be > 0"),
        ({"num_fewshot": -1}, "num_fewshot must be >= 0"),
        ({"schema_version": "benchcal.results/v0"}, "not supported"),
    ],
)
def test_invalid_task_results_are_refused_naming_the_file(change, message):
    with pytest.raises(BadInput, match=message):
        TaskResult.from_dict({**asdict(result()), **change}, "r.json")


def test_missing_fields_and_bad_json_name_the_file(tmp_path):
    data = asdict(result())
    del data["accuracy"], data["n"]
    with pytest.raises(BadInput, match=r"r\.json: missing field\(s\) accuracy, n"):
        TaskResult.from_dict(data, "r.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmark": ')
    with pytest.raises(BadInput, match=r"bad\.json: invalid JSON at line 1"):
        read_task_result(bad)
    with pytest.raises(BadInput, match="file not found"):
        read_summary(tmp_path / "nowhere")


def test_summary_round_trip_and_reducer_rows(tmp_path):
    summary = CheckpointSummary(
        "s1",
        {"source": "m"},
        1e15,
        [result(), result("piqa", 3, 0.7)],
        [Failure("copa", 0, "boom")],
        "t0",
        "t1",
    )
    write_summary(tmp_path, summary)
    back = read_summary(tmp_path)  # a directory reads its summary.json
    assert back == summary
    rows = summary_rows(back)
    assert len(rows) == 2 and all(set(TABLE_COLUMNS) <= set(r) for r in rows)
    assert rows[1] | {} == {
        **rows[1],
        "checkpoint": "s1",
        "flops": 1e15,
        "benchmark": "piqa",
        "num_fewshot": 3,
    }


def test_atomic_write_leaves_no_partial_or_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "file.json"
    atomic_write_text(target, json.dumps({"a": 1}))
    assert json.loads(target.read_text()) == {"a": 1}

    def crash(src, dst):  # killed between writing the temp file and the rename
        raise RuntimeError("disk full")

    monkeypatch.setattr("benchcal.results.os.replace", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_text(target, json.dumps({"a": 2}))
    assert json.loads(target.read_text()) == {"a": 1}  # the old content survives
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]  # no temp file left
