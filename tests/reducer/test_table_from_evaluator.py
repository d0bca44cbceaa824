"""The reducer reads what the evaluator writes: continuous metrics, majority rate, macro stderr.

A micro build of the embedded tiny series (three snapshots of one run, built in seconds), evaluated
by the real runner and engine on shipped gauntlet data, then reduced from its summaries: the
same path as `benchcal reduce DIR` and the operator's ConfigMaps (`table_from_summaries`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from benchcal.results import CONTINUOUS_METRICS, macro_average
from benchcal.tasks.registry import get_task
from benchcal.tasks.selection import grid

MICRO = dict(steps=(("s1", 2), ("s2", 4), ("s3", 8)), corpus_examples=300, seq_len=32, batch_size=4)
# MC with per-example options, LM, a Yes/No task (majority rate), a macro-average over subjects
BENCHMARKS = ("copa", "bigbench_dyck_languages", "bigbench_strategy_qa", "mmlu")


pytestmark = pytest.mark.slow  # about 35 s of CPU: a micro series build and 12 evaluated pairs


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    from benchcal_eval import tiny_series as ts
    from benchcal_eval.engine import ScoringEngine
    from benchcal_eval.models import load_model
    from benchcal_eval.plan import prepare
    from benchcal_eval.runner import run_checkpoint

    cfg = replace(ts.DEFAULT, **MICRO)
    root = tmp_path_factory.mktemp("micro")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHCAL_CACHE", str(root / "cache"))
        info = ts.series_info(cfg)
        plan = prepare(grid([get_task(b) for b in BENCHMARKS], (0,)), limit=8)
        out = []
        for ck in info["checkpoints"]:
            lm = load_model(str(ts.ensure_model(ck["name"], cfg)), dtype="float32", device="cpu")
            out.append(
                run_checkpoint(
                    lm, ScoringEngine(lm), plan, root / ck["name"], checkpoint=ck["name"], flops=ck["flops"]
                )
            )
    return out


def test_summary_rows_carry_the_new_columns_into_a_valid_table(summaries):
    from benchcal_reduce.table import table_from_summaries

    assert all(not s.failures for s in summaries)
    table = table_from_summaries(summaries).set_index(["benchmark", "checkpoint"])
    for name in ("copa", "bigbench_strategy_qa", "mmlu"):  # choices: all three and their stderrs
        rows = table.loc[name]
        for m in CONTINUOUS_METRICS:
            assert np.isfinite(rows[m]).all() and (rows[f"{m}_stderr"] > 0).all(), (name, m)
        assert ((rows["gold_margin"] > 0) | (rows["accuracy"] < 1)).all()
    dyck = table.loc["bigbench_dyck_languages"]  # language modelling: no wrong options, no margin
    assert dyck["gold_margin"].isna().all() and np.isfinite(dyck["bits_per_byte"]).all()
    assert (dyck["gold_prob"] <= 1).all() and (dyck["bits_per_byte"] > 0).all()
    # the first 8 strategy_qa rows: 6 "No", 2 "Yes"; copa's options differ per example
    assert (table.loc["bigbench_strategy_qa"]["majority_rate"] == 0.75).all()
    assert table.loc["copa"]["majority_rate"].isna().all()
    assert table.loc["mmlu"]["majority_rate"].between(0.25, 1.0).all()  # letter answers: "always A" etc.
    # the snapshots differ, and so do their continuous metrics: nothing is copied between checkpoints
    assert table.loc["copa"]["bits_per_byte"].nunique() == len(summaries)


def test_macro_average_stderr_comes_from_the_category_counts(summaries):
    for s in summaries:
        [mmlu] = [r for r in s.results if r.benchmark == "mmlu"]
        assert len(mmlu.category_counts) == 8 and sum(c["n"] for c in mmlu.category_counts.values()) == 8
        mean, se = macro_average(mmlu.category_counts)
        assert (mmlu.accuracy, mmlu.stderr) == (mean, se)
        # one item per subject: the plug-in variance would give 0; the pooled one is finite
        assert mmlu.stderr > 0 or mmlu.accuracy in (0.0, 1.0)


def test_the_reducer_tests_the_continuous_columns_and_uses_the_majority_floor(summaries):
    from benchcal_reduce import ReduceOptions, reduce_table
    from benchcal_reduce.table import table_from_summaries

    reduction = reduce_table(table_from_summaries(summaries), ReduceOptions(bootstrap=0))
    assert reduction.latent_metrics == list(CONTINUOUS_METRICS)
    assert not [n for n in reduction.notes if "latent" in n or "stderr" in n], reduction.notes
    per_shot = reduction.per_shot.set_index("benchmark")
    for m in CONTINUOUS_METRICS:
        assert math.isfinite(per_shot.loc["copa", f"{m}_rise_p"]), m
    assert math.isnan(per_shot.loc["bigbench_dyck_languages", "gold_margin_rise_p"])
    assert math.isfinite(per_shot.loc["bigbench_dyck_languages", "bits_per_byte_rise_p"])
    assert per_shot.loc["bigbench_strategy_qa", "floor"] == 0.75  # above the random baseline 0.5
    assert per_shot.loc["copa", "floor"] == per_shot.loc["copa", "random_baseline"]
    assert "latent_trend" in reduction.classification.columns
