"""The parametric bootstrap: seeded, the same rule as the verdict, honest about borderline cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchcal_reduce import bootstrap, classify
from benchcal_reduce.per_shot import decide, pool_equal_flops, series_statistics
from benchcal_reduce.reduce import reduce_table

from .tables import make_table, pinned_options, valid

SERIES = {
    ("good", 0): [0.30, 0.36, 0.42, 0.48, 0.54],
    ("good", 5): [0.32, 0.37, 0.43, 0.47, 0.55],
    ("edge", 0): [0.25, 0.27, 0.28, 0.30, 0.29],
    ("chance", 0): [0.25, 0.26, 0.24, 0.25, 0.255],
    ("dip", 0): [0.30, 0.40, 0.34, 0.45, 0.50],
}


def test_seeded_and_reproducible():
    table = valid(make_table(SERIES))
    a = reduce_table(table, pinned_options(seed=7)).classification["confidence"]
    b = reduce_table(table, pinned_options(seed=7)).classification["confidence"]
    assert a.tolist() == b.tolist()
    off = reduce_table(table, pinned_options(bootstrap=0))
    assert off.classification["confidence"].isna().all() and not off.classification["borderline"].any()
    assert "confidence not computed (--bootstrap 0)" in off.notes


def test_every_redraw_is_classified_as_a_table_with_those_numbers_would_be():
    options = pinned_options(bootstrap=0)
    table = valid(make_table(SERIES))
    stats_table, batches, _ = series_statistics(pool_equal_flops(table), options.settings)
    per_shot = decide(stats_table, alpha=options.alpha, correction=options.correction)
    draws = 6
    codes = bootstrap.redrawn_groups(per_shot, batches, options.settings, options.correction, draws, seed=3)
    # the same redraws, drawn again with the same generator, turned into tables and reduced from scratch
    rng = np.random.default_rng(3)
    redrawn = {batch.k: bootstrap.redraw(batch, draws, rng) for batch in batches}
    (batch,) = batches  # every series has 5 points: one batch, rows in per_shot order
    for d in range(draws):
        accs = {
            (r["benchmark"], int(r["num_fewshot"])): list(redrawn[batch.k][d, i])
            for i, r in enumerate(per_shot.iloc[batch.rows].to_dict("records"))
        }
        again = reduce_table(valid(make_table(accs)), options).classification
        expected = again["group"].map(classify.GROUPS.index).to_numpy()
        assert codes[d].tolist() == expected.tolist()


def test_flat_at_chance_is_rarely_anything_but_noise():
    red = reduce_table(
        valid(make_table({("chance", 0): SERIES[("chance", 0)]})), pinned_options(bootstrap=1000)
    )
    row = red.classification.iloc[0]
    # the issue: "a flat-at-chance series comes out robust in about 5% of redraws"
    assert row["group"] == "noise" and row["confidence"] >= 0.98
    alt = row["redraw_alternative"]
    assert alt == "" or float(alt.split()[1]) <= 0.02


def test_confidence_tracks_the_distance_from_the_thresholds():
    red = reduce_table(valid(make_table(SERIES)), pinned_options(bootstrap=400))
    cls = red.classification.set_index("benchmark")
    assert cls.at["good", "confidence"] == 1.0 and cls.at["good", "redraw_alternative"] == ""
    # 'dip': a 6-point fall on n=1000 is 2.8 standard errors, against 2.5 for 5 checkpoints
    assert cls.at["dip", "group"] == "poorly_behaved" and cls.at["dip", "borderline"]
    assert 0.3 < cls.at["dip", "confidence"] < 0.8
    assert cls.at["dip", "redraw_alternative"].startswith("robust")
    assert (cls["borderline"] == (cls["confidence"] < classify.BORDERLINE_BELOW)).all()


def test_pooled_and_incomplete_series_are_redrawn_too():
    df = make_table({("b", 0): [0.30, 0.34, 0.38, 0.42, 0.48], ("c", 0): [0.3, 0.4, 0.5, 0.6, 0.7]})
    df = df[~((df["benchmark"] == "c") & df["checkpoint"].isin(["c0", "c1", "c2"]))]
    red = reduce_table(valid(pd.concat([df])), pinned_options())
    cls = red.classification.set_index("benchmark")
    assert cls.at["c", "group"] == "inconclusive" and cls.at["c", "confidence"] == 1.0  # 2 points: fixed
    assert cls.at["b", "confidence"] > 0.9
