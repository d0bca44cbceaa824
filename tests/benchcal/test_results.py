"""benchcal.results: the one results schema, its paths inside a checkpoint directory, atomic I/O."""

from __future__ import annotations

import json
import math
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
    find_task_result,
    macro_average,
    read_summary,
    read_task_result,
    result_path,
    stored_keys,
    summary_path,
    summary_rows,
    write_summary,
    write_task_result,
)

KEY, OTHER = "ab" * 16, "cd" * 16


def result(bench="arc_easy", shots=0, acc=0.5, key=KEY) -> TaskResult:
    return TaskResult(
        bench, "world_knowledge", "multiple_choice", shots, "acc", acc, 100, 0.05, 0.25, config_key=key
    )


def test_paths_inside_a_checkpoint_directory(tmp_path):
    assert (
        result_path(tmp_path, "arc_easy", 3, KEY) == tmp_path / "results" / "arc_easy" / f"3shot.{KEY}.json"
    )
    assert (
        examples_path(tmp_path, "arc_easy", 3, KEY)
        == tmp_path / "examples" / "arc_easy" / f"3shot.{KEY}.jsonl"
    )
    assert summary_path(tmp_path) == tmp_path / "summary.json"
    assert (
        result_path("s3://b/run/checkpoints/c1", "piqa", 0, KEY)
        == f"s3://b/run/checkpoints/c1/results/piqa/0shot.{KEY}.json"
    )
    with pytest.raises(ValueError, match="config_key"):
        result_path(tmp_path, "arc_easy", 3, "")


def test_results_of_different_configurations_live_side_by_side(tmp_path):
    for r in (result("piqa", 1), result("piqa", 1, 0.9, OTHER), result("arc_easy", 5), result("piqa", 0)):
        assert write_task_result(tmp_path, r) == result_path(
            tmp_path, r.benchmark, r.num_fewshot, r.config_key
        )
    back = read_task_result(result_path(tmp_path, "piqa", 1, KEY))
    assert back == result("piqa", 1) and back.schema_version == SCHEMA_VERSION
    assert find_task_result(tmp_path, "piqa", 1, OTHER).accuracy == 0.9
    assert find_task_result(tmp_path, "piqa", 3, KEY) is None
    assert sorted(stored_keys(tmp_path, "piqa", 1)) == sorted([KEY, OTHER])
    assert stored_keys(tmp_path, "piqa", 0) == [KEY] and stored_keys(tmp_path, "copa", 0) == []
    # a result file of today's layout before keys is neither listed nor found
    (tmp_path / "results" / "piqa" / "1shot.json").write_text(json.dumps(asdict(result("piqa", 1))))
    assert sorted(stored_keys(tmp_path, "piqa", 1)) == sorted([KEY, OTHER])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accuracy": 1.5}, "accuracy must be in"),
        ({"accuracy": float("nan")}, "accuracy must be in"),
        ({"n": 0}, "n must be > 0"),
        ({"num_fewshot": -1}, "num_fewshot must be >= 0"),
        ({"schema_version": "benchcal.results/v0"}, "not supported"),
        ({"metrics": {"gold_prob": 1.2}}, r"metrics\.gold_prob must be a finite number in \[0, 1\]"),
        ({"metrics": {"bits_per_byte": -0.1}}, r"metrics\.bits_per_byte must be"),
        ({"metrics": {"gold_margin": float("nan")}}, r"metrics\.gold_margin must be"),
        ({"metrics": {"gold_prob_stderr": -1.0}}, r"metrics\.gold_prob_stderr must be"),
        ({"metrics": {"majority_rate": "0.6"}}, r"metrics\.majority_rate must be"),
        ({"category_counts": {"a": {"correct": 3, "n": 2}}}, r"category_counts\['a'\] must be"),
        ({"category_counts": {"a": {"correct": 1}}}, r"category_counts\['a'\] must be"),
        ({"category_counts": {"a": {"correct": 50, "n": 60}}}, "add up to 60 examples, but n = 100"),
        (
            {"category_counts": {"a": {"correct": 20, "n": 50}, "b": {"correct": 20, "n": 50}}},
            "accuracy 0.5 is not the mean over category_counts",
        ),
        (
            {"category_counts": {"a": {"correct": 10, "n": 20}, "b": {"correct": 40, "n": 80}}},
            "stderr 0.05 is not the macro-average's standard error",
        ),
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


def test_category_counts_and_continuous_metrics_round_trip_into_reducer_rows(tmp_path):
    counts = {"algebra": {"correct": 30, "n": 40}, "law": {"correct": 15, "n": 60}}
    mean, se = macro_average(counts)
    assert mean == pytest.approx((0.75 + 0.25) / 2)
    # unbiased per-category variances n a (1 - a) / (n - 1), divided by n: a(1-a)/(n-1)
    assert se == pytest.approx(math.sqrt(0.75 * 0.25 / 39 + 0.25 * 0.75 / 59) / 2)
    # a category of one item borrows the pooled variance (micro 3/4 over 4 items: 4 * 3/16 / 3 = 1/4)
    assert macro_average({"a": {"correct": 3, "n": 3}, "b": {"correct": 0, "n": 1}}) == pytest.approx(
        (0.5, math.sqrt(0.0 / 3 + 0.25 / 1) / 2)
    )
    assert macro_average({"a": {"correct": 1, "n": 1}}) == (1.0, 0.0)
    metrics = {"acc_sum": 0.4, "gold_prob": 0.3, "gold_prob_stderr": 0.01, "bits_per_byte": 2.5,
               "bits_per_byte_stderr": 0.1, "gold_margin": -0.2, "gold_margin_stderr": 0.02, "majority_rate": 0.6}  # fmt: skip
    r = TaskResult("mmlu", "world_knowledge", "multiple_choice", 5, "acc", mean, 100, se, 0.25,
                   config_key=KEY, metrics=metrics, category_counts=counts)  # fmt: skip
    write_task_result(tmp_path, r)
    assert read_task_result(result_path(tmp_path, "mmlu", 5, KEY)) == r
    [row] = summary_rows(CheckpointSummary("s1", {}, 1e15, [r]))
    assert {k: row[k] for k in metrics if k != "acc_sum"} == {
        k: v for k, v in metrics.items() if k != "acc_sum"
    }
    assert "acc_sum" not in row and row["stderr"] == se


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

    monkeypatch.setattr("benchcal.storage.os.replace", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_text(target, json.dumps({"a": 2}))
    assert json.loads(target.read_text()) == {"a": 1}  # the old content survives
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]  # no temp file left
