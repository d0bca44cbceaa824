"""The gauntlet composite (llm-foundry's formula) before and after calibration."""

from __future__ import annotations

import pandas as pd
import pytest

from benchcal_reduce.composite import complete_selection, composite_scores, composite_trend
from benchcal_reduce.reduce import reduce_table

from .tables import make_table, pinned_options, valid


def test_formula_equal_weights_within_then_across_categories():
    a = make_table({("b1", 0): [0.40, 0.55, 0.70]}, baseline=0.25, category="A")
    b = make_table({("b2", 0): [0.10, 0.20, 0.30]}, baseline=0.0, category="A")
    c = make_table({("b3", 0): [0.50, 0.60, 0.90]}, baseline=0.5, category="B")
    table = valid(pd.concat([a, b, c]))
    cats = {"b1": "A", "b2": "A", "b3": "B"}
    scores = composite_scores(table, {"b1": 0, "b2": 0, "b3": 0}, cats)
    s1 = [(x - 0.25) / 0.75 for x in (0.40, 0.55, 0.70)]
    s2 = [0.10, 0.20, 0.30]
    s3 = [(x - 0.5) / 0.5 for x in (0.50, 0.60, 0.90)]
    expected = [((p + q) / 2 + r) / 2 for p, q, r in zip(s1, s2, s3, strict=True)]
    assert list(scores["composite"]) == pytest.approx(expected)
    assert list(scores["A"]) == pytest.approx([(p + q) / 2 for p, q in zip(s1, s2, strict=True)])


def test_incomplete_benchmarks_stay_out_of_the_composite():
    df = make_table({("full", 0): [0.3, 0.4, 0.5], ("part", 0): [0.3, 0.4, 0.5]})
    df = valid(df[~((df["benchmark"] == "part") & (df["checkpoint"] == "c1"))])
    kept, dropped = complete_selection(df, {"full": 0, "part": 0, "full_at_3": 3})
    assert kept == {"full": 0} and dropped == ["part", "full_at_3"]


def test_trend_of_composite():
    scores = pd.DataFrame({"flops": [1.0, 2.0, 3.0, 3.0], "composite": [0.1, 0.2, 0.25, 0.35]})
    trend = composite_trend(scores)
    assert trend["monotone"] and trend["points"] == 3 and trend["kendall"] == 1.0
    assert not composite_trend(scores.assign(composite=[0.1, 0.3, 0.2, 0.2]))["monotone"]


def test_calibration_removes_poorly_behaved_and_repairs_the_composite():
    # 'wild' swings so much that the uncalibrated composite is not monotone.
    series = {
        ("good", 0): [0.30, 0.35, 0.40, 0.45, 0.50],
        ("wild", 0): [0.30, 0.90, 0.30, 0.90, 0.30],
        ("mixed", 0): [0.30, 0.35, 0.40, 0.45, 0.50],
        ("mixed", 3): [0.50, 0.30, 0.50, 0.30, 0.50],
    }
    red = reduce_table(valid(make_table(series)), pinned_options())
    comp = red.composite
    assert comp["before"]["benchmarks"] == {"good": 0, "wild": 0, "mixed": 3}  # 3 = fallback default
    assert comp["after"]["benchmarks"] == {"good": 0, "mixed": 0}
    assert not comp["before"]["monotone"] and comp["after"]["monotone"]
