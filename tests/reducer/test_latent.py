"""Latent progress: noise on accuracy, but a continuous metric already improving."""

from __future__ import annotations

import numpy as np

from benchcal_reduce.reduce import reduce_table
from benchcal_reduce.report import group_label

from .tables import make_table, pinned_options, valid

AT_CHANCE = [0.25, 0.26, 0.24, 0.25, 0.255]


def table_with(**metrics):
    df = make_table({("b", 0): AT_CHANCE})
    for name, values in metrics.items():
        df[name] = values
    return valid(df)


def reduce(df):
    return reduce_table(df, pinned_options(bootstrap=0))


def test_rising_gold_prob_flags_a_latent_trend():
    red = reduce(table_with(gold_prob=[0.26, 0.28, 0.30, 0.33, 0.36]))  # no stderr: the [0, 1] bound
    row = red.classification.iloc[0]
    assert row["group"] == "noise" and row["latent_trend"]
    assert "gold_prob rises monotonically at 0-shot" in row["reason"]
    assert group_label(row.to_dict()) == "noise (latent trend)"
    assert any("no gold_prob_stderr column; using the bound" in n for n in red.notes)
    assert red.per_shot.iloc[0]["gold_prob_improves"]


def test_bits_per_byte_is_lower_is_better():
    falling = reduce(
        table_with(bits_per_byte=[1.30, 1.25, 1.21, 1.16, 1.10], bits_per_byte_stderr=[0.01] * 5)
    )
    assert falling.classification.iloc[0]["latent_trend"]
    assert "bits_per_byte falls monotonically" in falling.classification.iloc[0]["reason"]
    rising = reduce(table_with(bits_per_byte=[1.10, 1.16, 1.21, 1.25, 1.30], bits_per_byte_stderr=[0.01] * 5))
    assert not rising.classification.iloc[0]["latent_trend"]


def test_flat_or_noisy_continuous_metric_is_no_latent_trend():
    flat = reduce(table_with(gold_margin=[0.10, 0.11, 0.09, 0.10, 0.105], gold_margin_stderr=[0.01] * 5))
    assert not flat.classification.iloc[0]["latent_trend"]
    # a fall beyond noise in the middle: not monotone
    wavy = reduce(table_with(gold_margin=[0.1, 0.5, 0.2, 0.6, 0.7], gold_margin_stderr=[0.02] * 5))
    assert (
        not wavy.classification.iloc[0]["latent_trend"] and not wavy.per_shot.iloc[0]["gold_margin_improves"]
    )


def test_missing_columns_or_standard_errors_are_not_made_up():
    none = reduce(table_with())
    assert any("latent-trend check not applied" in n for n in none.notes)
    assert not none.classification.iloc[0]["latent_trend"] and "gold_prob_rise_p" not in none.per_shot
    # an unbounded metric without its standard error is not tested, and the report says so
    no_se = reduce(table_with(gold_margin=[0.1, 0.2, 0.3, 0.4, 0.5]))
    assert any("gold_margin given without gold_margin_stderr: not used" in n for n in no_se.notes)
    assert "gold_margin_rise_p" not in no_se.per_shot
    # one missing value in a series: that series is not tested for the metric
    gap = reduce(table_with(gold_prob=[0.26, 0.28, np.nan, 0.33, 0.36]))
    assert (
        np.isnan(gap.per_shot.iloc[0]["gold_prob_rise_p"]) and not gap.classification.iloc[0]["latent_trend"]
    )


def test_only_noise_benchmarks_get_the_flag():
    df = make_table({("up", 0): [0.30, 0.36, 0.42, 0.48, 0.54]})
    df["gold_prob"] = [0.3, 0.35, 0.4, 0.45, 0.5]
    row = reduce(valid(df)).classification.iloc[0]
    assert row["group"] == "robust" and not row["latent_trend"]
