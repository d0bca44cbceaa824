"""Loading and validating the long table (CSV, Parquet, evaluator directories)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_baseline_must_not_differ_between_checkpoints(tmp_path):
    lines = [*GOOD[:2], "s3,1e20,arc,0,0.40,500,0.2"]
    with pytest.raises(
        BadInput,
        match=r"data row 3: 'random_baseline' is 0.2 for benchmark 'arc' 0-shot on checkpoint 's3', but 0.25 at .*data row 1",
    ):
        load_table(write_csv(tmp_path, lines))
    # a different shot count may be a different task variant; only checkpoints of one series must agree
    ok = [*GOOD, "s1,1e18,arc,5,0.30,500,0.2", "s2,1e19,arc,5,0.35,500,0.2", "s3,1e20,arc,5,0.40,500,0.2"]
    assert len(load_table(write_csv(tmp_path, ok))) == 6


def test_majority_rate_is_a_property_of_the_benchmark(tmp_path):
    header = HEADER.strip() + ",majority_rate\n"
    lines = [g + ",0.62" for g in GOOD[:2]] + [GOOD[2] + ",0.6"]
    with pytest.raises(BadInput, match=r"data row 3: 'majority_rate' is 0.6"):
        load_table(write_csv(tmp_path, lines, header))
    with pytest.raises(BadInput, match=r"data row 1: column 'majority_rate' must be in \[0, 1\)"):
        load_table(write_csv(tmp_path, [g + ",1.0" for g in GOOD], header))


@pytest.mark.parametrize(
    ("stderr", "ok"),
    [
        ("0.0205", True),  # binomial: sqrt(.3*.7/500)
        ("0.06", True),  # a macro-average over unequal categories: within the factor 5
        ("0.2", False),  # n is not the number of items (the stderr says ~5 items)
        ("0.001", False),  # the stderr says ~210,000 items
        ("", True),  # not given
    ],
)
def test_n_must_be_consistent_with_the_stderr(tmp_path, stderr, ok):
    header = HEADER.strip() + ",stderr\n"
    lines = [GOOD[0] + "," + stderr, GOOD[1] + ",", GOOD[2] + ","]
    if ok:
        load_table(write_csv(tmp_path, lines, header))
    else:
        with pytest.raises(BadInput, match=r"data row 1: 'n' = 500 is inconsistent with 'stderr'"):
            load_table(write_csv(tmp_path, lines, header))


def test_stderr_text_and_negative_values_are_rejected(tmp_path):
    header = HEADER.strip() + ",stderr\n"
    with pytest.raises(BadInput, match=r"data row 2: column 'stderr' must be a number or empty, got 'n/a'"):
        load_table(write_csv(tmp_path, [GOOD[0] + ",0.02", GOOD[1] + ",n/a", GOOD[2] + ","], header))
    with pytest.raises(BadInput, match=r"data row 1: column 'stderr' must be in \[0, inf\]"):
        load_table(write_csv(tmp_path, [GOOD[0] + ",-0.02", GOOD[1] + ",", GOOD[2] + ","], header))


@pytest.mark.parametrize(
    "metric", ["xent(lower=better)", "loss", "word_perplexity", "bits_per_byte", "error_rate"]
)
def test_lower_is_better_primary_metric_is_rejected(tmp_path, metric):
    header = HEADER.strip() + ",metric\n"
    lines = [GOOD[0] + ",acc", GOOD[1] + f",{metric}", GOOD[2] + ",acc"]
    with pytest.raises(BadInput, match=r"data row 2: column 'metric' is .* a lower-is-better metric"):
        load_table(write_csv(tmp_path, lines, header))
    load_table(write_csv(tmp_path, [g + ",acc_norm" for g in GOOD], header))


def test_continuous_metric_columns_are_typed_and_checked(tmp_path):
    header = HEADER.strip() + ",gold_prob,bits_per_byte,bits_per_byte_stderr\n"
    df = load_table(
        write_csv(
            tmp_path, [GOOD[0] + ",0.3,1.2,0.01", GOOD[1] + ",0.35,,", GOOD[2] + ",0.4,1.1,0.01"], header
        )
    )
    assert df["gold_prob"].tolist() == [0.3, 0.35, 0.4] and np.isnan(df["bits_per_byte"].iat[1])
    with pytest.raises(BadInput, match=r"data row 1: column 'gold_prob' must be in \[0, 1\]"):
        load_table(
            write_csv(
                tmp_path, [GOOD[0] + ",1.3,1,0.1", GOOD[1] + ",0.3,1,0.1", GOOD[2] + ",0.3,1,0.1"], header
            )
        )


def test_summaries_carry_metric_and_continuous_metrics():
    summaries = []
    for i, acc in enumerate([0.3, 0.4, 0.5]):
        s = _summary(f"c{i}", 10.0 ** (18 + i), acc)
        s.results[0].metrics = {"gold_prob": 0.3 + 0.05 * i, "gold_prob_stderr": 0.004, "acc_micro": acc}
        summaries.append(s)
    df = table_from_summaries(summaries)
    assert (df["metric"] == "acc").all() and df["gold_prob"].tolist() == pytest.approx([0.3, 0.35, 0.4])
    assert "acc_micro" not in df.columns
