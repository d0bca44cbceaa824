"""Loading and validating the long table (CSV, Parquet, evaluator directories)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchcal.errors import BadInput
from benchcal.results import CheckpointSummary, TaskResult, write_summary
from benchcal_reduce.table import load_table, table_from_summaries

HEADER = "checkpoint,flops,benchmark,num_fewshot,accuracy,n,random_baseline\n"
GOOD = ["s1,1e18,arc,0,0.30,500,0.25", "s2,1e19,arc,0,0.35,500,0.25", "s3,1e20,arc,0,0.40,500,0.25"]


def write_csv(tmp_path: Path, lines: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def test_good_csv_with_big_integer_and_string_flops(tmp_path):
    lines = [
        "s1,1479814347352965120,arc,0,0.30,500,0.25",
        "s2,1.2e+22,arc,0,0.35,500,0.25",
        "s3,123456789012345678901234567890,arc,0,0.40,500,0.25",
    ]
    df = load_table(write_csv(tmp_path, lines))
    assert list(df["flops"]) == [1479814347352965120.0, 1.2e22, 1.2345678901234568e29]
    assert df["n"].dtype.kind == "i" and (df["category"] == "").all()


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("s3,1e20,arc,0,1.2,500,0.25", "data row 3: column 'accuracy' must be in [0, 1]"),
        ("s3,1e20,arc,0,0.4,0,0.25", "data row 3: column 'n' must be an integer > 0"),
        ("s3,inf,arc,0,0.4,500,0.25", "data row 3: column 'flops' must be a finite number"),
        ("s3,,arc,0,0.4,500,0.25", "data row 3: column 'flops' must be a number"),
        ("s3,1e20,arc,-1,0.4,500,0.25", "data row 3: column 'num_fewshot'"),
        ("s3,1e20,arc,0,0.4,500,1.0", "data row 3: column 'random_baseline'"),
        ("s3,1e20,,0,0.4,500,0.25", "data row 3: column 'benchmark' is empty"),
    ],
)
def test_bad_values_name_column_and_row(tmp_path, bad_line, expected):
    with pytest.raises(BadInput, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_table(write_csv(tmp_path, [*GOOD[:2], bad_line]))


def test_missing_columns(tmp_path):
    header = "checkpoint,flops,benchmark,num_fewshot,accuracy\n"
    with pytest.raises(BadInput, match=r"missing column.*n, random_baseline"):
        load_table(write_csv(tmp_path, ["s1,1e18,arc,0,0.3"], header))


def test_duplicate_rows_name_both(tmp_path):
    with pytest.raises(BadInput, match=r"data row 4: duplicate row .*'s2'.*first at .*data row 2"):
        load_table(write_csv(tmp_path, [*GOOD, "s2,1e19,arc,0,0.36,500,0.25"]))


def test_fewer_than_three_checkpoints_and_inconsistent_flops(tmp_path):
    with pytest.raises(BadInput, match="2 checkpoint"):
        load_table(write_csv(tmp_path, GOOD[:2]))
    with pytest.raises(BadInput, match="only 2 distinct 'flops'"):
        load_table(write_csv(tmp_path, [*GOOD[:2], "s3,1e19,arc,0,0.40,500,0.25"]))
    with pytest.raises(BadInput, match="data row 4: checkpoint 's1' has different 'flops'"):
        load_table(write_csv(tmp_path, [*GOOD, "s1,5e18,arc,5,0.30,500,0.25"]))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_table(tmp_path / "nope.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(BadInput, match="unsupported table format"):
        load_table(tmp_path / "t.xlsx")


def test_parquet_same_as_csv(tmp_path):
    csv = load_table(write_csv(tmp_path, GOOD))
    raw = pd.read_csv(tmp_path / "t.csv")
    raw.to_parquet(tmp_path / "t.parquet")
    pq = load_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(csv.drop(columns="_where"), pq.drop(columns="_where"))


def _summary(name: str, flops: float | None, acc: float) -> CheckpointSummary:
    result = TaskResult(
        benchmark="arc_easy",
        category="world_knowledge",
        task_type="multiple_choice",
        num_fewshot=3,
        metric="acc",
        accuracy=acc,
        n=400,
        stderr=0.02,
        random_baseline=0.25,
    )
    return CheckpointSummary(checkpoint=name, model={"source": name}, flops=flops, results=[result])


def test_directory_of_evaluator_outputs(tmp_path):
    for i, acc in enumerate([0.3, 0.4, 0.5]):
        write_summary(tmp_path / f"ckpt{i}", _summary(f"ckpt{i}", 10.0 ** (18 + i), acc))
    df = load_table(tmp_path)
    assert sorted(df["checkpoint"]) == ["ckpt0", "ckpt1", "ckpt2"]
    assert list(df.sort_values("flops")["accuracy"]) == [0.3, 0.4, 0.5]
    assert (df["category"] == "world_knowledge").all()
    # a single checkpoint dir is a valid INPUT too, but one checkpoint cannot be reduced
    with pytest.raises(BadInput, match="1 checkpoint"):
        load_table(tmp_path / "ckpt0")
    with pytest.raises(BadInput, match=r"no summary\.json"):
        load_table(_empty_dir(tmp_path))


def _empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_summaries_without_flops_are_rejected():
    with pytest.raises(BadInput, match="'c1': summary has no flops"):
        table_from_summaries([_summary("c1", None, 0.3)])
