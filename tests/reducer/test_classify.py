"""Every classification rule and edge case on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from benchcal.errors import BadInput
from benchcal_reduce.classify import recommend_shots
from benchcal_reduce.reduce import reduce_table

from .tables import make_table, pinned_options, valid

RISING = [0.30, 0.36, 0.42, 0.48, 0.54]
AT_CHANCE = [0.25, 0.26, 0.24, 0.25, 0.255]


def reduce(series, standard=None, **kw):
    table_kw = {k: kw.pop(k) for k in ("flops", "n", "baseline") if k in kw}
    return reduce_table(valid(make_table(series, **table_kw)), pinned_options(standard, **kw))


def group_of(red, bench):
    return red.classification.set_index("benchmark").at[bench, "group"]


def shot_row(red, bench, shots):
    ps = red.per_shot
    return ps[(ps["benchmark"] == bench) & (ps["num_fewshot"] == shots)].iloc[0]


def test_the_four_groups():
    red = reduce(
        {
            ("good", 0): RISING,
            ("good", 5): [a + 0.02 for a in RISING],
            ("some", 0): RISING,
            ("some", 5): [0.45, 0.46, 0.44, 0.45, 0.455],
            ("bad", 0): [0.30, 0.50, 0.35, 0.55, 0.40],
            ("bad", 5): [0.6, 0.6, 0.6, 0.6, 0.6],
            ("chance", 0): AT_CHANCE,
            ("chance", 5): [0.25, 0.24, 0.25, 0.26, 0.25],
        }
    )
    assert group_of(red, "good") == "robust"
    assert group_of(red, "some") == "shot_dependent"
    assert group_of(red, "bad") == "poorly_behaved"
    assert group_of(red, "chance") == "noise"
    cls = red.classification.set_index("benchmark")
    assert cls.at["some", "recommended_shots"] == 0
    assert pd.isna(cls.at["bad", "recommended_shots"]) and pd.isna(cls.at["chance", "recommended_shots"])
    assert "not above chance" in cls.at["chance", "reason"]
    assert "5-shot: flat: no significant rise" in cls.at["some", "reason"]
    assert "fall of 0.150 beyond noise" in cls.at["bad", "reason"]
    assert cls.at["some", "shots_not_monotone"] == "5" and cls.at["some", "shots_undetermined"] == "none"


def test_flat_series_at_chance_is_not_monotone_and_constant_is_not_either():
    red = reduce({("flat", 0): [0.25] * 5, ("const", 0): [0.7] * 5, ("up", 0): RISING})
    assert not shot_row(red, "flat", 0)["monotone"]
    assert not shot_row(red, "const", 0)["monotone"]
    assert group_of(red, "const") == "poorly_behaved"
    assert shot_row(red, "up", 0)["monotone"]


def test_drop_within_noise_is_tolerated_but_not_in_strict_mode():
    series = {("b", 0): [0.30, 0.35, 0.345, 0.40, 0.45]}  # a 0.5-point dip on n=1000
    assert group_of(reduce(series), "b") == "robust"
    assert group_of(reduce(series, strict=True), "b") == "poorly_behaved"
    tie = {("b", 0): [0.30, 0.35, 0.35, 0.40, 0.45]}
    assert group_of(reduce(tie), "b") == "robust"
    assert group_of(reduce(tie, strict=True), "b") == "poorly_behaved"


def test_drop_beyond_noise_breaks_monotonicity():
    red = reduce({("b", 0): [0.30, 0.40, 0.33, 0.45, 0.50]})
    row = shot_row(red, "b", 0)
    assert row["rising"] and row["significant_drop"] and not row["monotone"]
    # the same dip on 50 examples is within noise
    row = shot_row(reduce({("b", 0): [0.30, 0.40, 0.33, 0.45, 0.50]}, n=50), "b", 0)
    assert not row["significant_drop"]


def test_three_checkpoints_are_tested_like_any_other_length():
    # no rank test whose best p is 1/3! = 0.17: the isotonic tests use the size of each gain
    red = reduce({("b", 0): [0.30, 0.40, 0.50], ("c", 0): [0.30, 0.31, 0.30]})
    row = shot_row(red, "b", 0)
    assert row["monotone"] and row["rise_p"] < 1e-10
    # 3 checkpoints over 2 decades on n=1000: a gain of 0.02/decade cannot be ruled out -> undetermined
    c = shot_row(red, "c", 0)
    assert not c["monotone"] and c["trend"] == "undetermined" and group_of(red, "c") == "inconclusive"
    assert red.warnings == []


def test_thirty_checkpoints():
    rng = np.random.default_rng(3)
    trend = np.clip(np.linspace(0.3, 0.6, 30) + rng.normal(0, 0.005, 30), 0, 1)
    noise = np.clip(0.4 + rng.normal(0, 0.01, 30), 0, 1)
    red = reduce({("t", 0): list(trend), ("z", 0): list(noise)}, n=2000)
    assert shot_row(red, "t", 0)["monotone"] and shot_row(red, "t", 0)["rise_p"] < 1e-20
    assert not shot_row(red, "z", 0)["monotone"]


def test_equal_flops_are_pooled_and_reported():
    flops = [1e18, 1e19, 1e19, 1e20, 1e21]
    red = reduce({("b", 0): [0.30, 0.34, 0.38, 0.42, 0.48]}, flops=flops)
    row = shot_row(red, "b", 0)
    assert row["n_points"] == 4 and row["monotone"]
    assert any("share flops=1e+19" in w for w in red.warnings)


def test_recommended_shots_tie_breaks():
    rows = [{"num_fewshot": s, "spearman": r} for s, r in [(0, 1.0), (1, 1.0), (3, 1.0), (5, 0.9)]]
    assert recommend_shots(rows, standard=1) == 1
    assert recommend_shots(rows, standard=5) == 3  # the standard is not among the tied best
    assert recommend_shots([r for r in rows if r["num_fewshot"] != 3], standard=None) == 0
    assert recommend_shots([dict(r, spearman=0.5 + 0.1 * i) for i, r in enumerate(rows)], standard=0) == 5
    assert recommend_shots([], standard=3) is None
    red = reduce({("b", 0): RISING, ("b", 3): RISING, ("b", 5): RISING}, standard={"b": 5})
    assert red.classification.at[0, "recommended_shots"] == 5
    red = reduce({("b", 0): RISING, ("b", 3): RISING, ("b", 5): RISING})
    assert red.classification.at[0, "recommended_shots"] == 3


def test_monotone_below_chance_is_not_recommended_when_another_is_above():
    # 0-shot rises but stays under the 0.5 baseline; 5-shot rises above it.
    red = reduce(
        {("b", 0): [0.30, 0.33, 0.36, 0.39, 0.42], ("b", 5): [0.45, 0.50, 0.55, 0.60, 0.65]}, baseline=0.5
    )
    assert group_of(red, "b") == "robust"
    assert red.classification.at[0, "recommended_shots"] == 5


def test_incomplete_benchmarks_are_reported_not_dropped():
    df = make_table({("full", 0): RISING, ("part", 0): RISING})
    df = df[~((df["benchmark"] == "part") & (df["checkpoint"] == "c2"))]
    red = reduce_table(valid(df), pinned_options())
    assert red.incomplete == {"part": {0: ["c2"]}}
    assert group_of(red, "part") == "robust"
    assert any("'part' 0-shot is missing on checkpoint(s) c2" in w for w in red.warnings)
    # one shot count missing on one checkpoint is reported too
    df = make_table({("b", 0): RISING, ("b", 5): RISING})
    red = reduce_table(valid(df[~((df["num_fewshot"] == 5) & (df["checkpoint"] == "c4"))]), pinned_options())
    assert red.incomplete == {"b": {5: ["c4"]}}


def test_fewer_than_three_checkpoints_is_inconclusive():
    df = make_table({("full", 0): RISING, ("two", 0): RISING})
    df = df[~((df["benchmark"] == "two") & df["checkpoint"].isin(["c0", "c1", "c2"]))]
    red = reduce_table(valid(df), pinned_options())
    assert group_of(red, "two") == "inconclusive"
    row = red.classification.set_index("benchmark").loc["two"]
    assert row["reason"].startswith("fewer than 3 checkpoints") and row["confidence"] == 1.0
    assert shot_row(red, "two", 0)["trend"] == "untested"


def test_above_chance_tests_the_best_point_with_margin_and_table_wide_correction():
    # best point 0.32 on n=500 vs null 0.25 + 0.02*0.75 = 0.265: p*5 ~ 0.03 alone, not after 10 tests
    series = {(f"null{i}", 0): [0.25, 0.25, 0.25, 0.25, 0.25] for i in range(9)}
    series[("edge", 0)] = [0.25, 0.27, 0.32, 0.28, 0.29]
    red = reduce(series, n=500)
    row = shot_row(red, "edge", 0)
    single = ss.binomtest(160, 500, 0.265, alternative="greater").pvalue
    assert row["above_chance_p"] == pytest.approx(5 * single) and row["best_checkpoint"] == "c2"
    assert row["above_chance_p"] < 0.05 < row["above_chance_q"]
    assert group_of(red, "edge") == "noise"
    assert "best 0-shot 0.320 (c2)" in red.classification.set_index("benchmark").at["edge", "reason"]
    alone = reduce({("edge", 0): series[("edge", 0)]}, n=500)
    assert shot_row(alone, "edge", 0)["above_chance"]
    holm = reduce(series, n=500, correction="holm")
    assert shot_row(holm, "edge", 0)["above_chance_q"] >= row["above_chance_q"]


def test_bad_options():
    with pytest.raises(BadInput, match="alpha"):
        reduce({("b", 0): RISING}, alpha=1.5)


def test_order_within_noise_is_no_rise_and_a_late_jump_after_noise_is_one():
    red = reduce(
        {
            ("tiny", 0): [0.500, 0.501, 0.502, 0.503, 0.504],  # perfect order, gain far within noise
            ("jump", 0): [0.30, 0.31, 0.295, 0.305, 0.30, 0.298, 0.60],  # flat within noise, then a jump
        },
        n={"tiny": 100, "jump": 10000},
        baseline=0.25,
    )
    tiny, jump = shot_row(red, "tiny", 0), shot_row(red, "jump", 0)
    # ranks alone would call "tiny" a trend (Kendall tau = 1); its gain is 0.1 standard errors
    assert tiny["kendall"] == 1.0 and tiny["rise_p"] > 0.5 and tiny["trend"] == "undetermined"
    # "jump" is consistent with a non-decreasing truth (its 1.5-point dips are within noise) and rises:
    # monotone within noise, but it orders only the last step right, which decision accuracy reports
    assert jump["monotone"] and not jump["significant_drop"] and jump["decision_accuracy"] == 0.5
    strict = reduce({("jump", 0): [0.30, 0.31, 0.295, 0.305, 0.30, 0.298, 0.60]}, n=10000, strict=True)
    assert not shot_row(strict, "jump", 0)["monotone"]  # the study's literal rule: every step up
