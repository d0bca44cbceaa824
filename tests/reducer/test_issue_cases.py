"""Issue 13's synthetic cases (n = 2000 per point unless said), one row each, and the property that
subsampling a clear trend never changes its verdict.

Before issue 13 every case marked "was" below got that verdict (measured on the previous reducer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchcal_reduce.reduce import reduce_table

from .tables import pinned_options, valid

# 57 subjects of unequal size (100..1534 items), like MMLU's test split: a macro-average over them
MMLU_SIZES = np.array([100] * 10 + [150] * 15 + [250] * 15 + [400] * 12 + [1000] * 4 + [1534])


def series_table(accs, n=2000, baseline=0.25, decades=4.0, stderr=None, majority=None, name="b"):
    k = len(accs)
    rows = []
    for i, acc in enumerate(accs):
        row = {
            "checkpoint": f"c{i}",
            "flops": 10.0 ** (18 + decades * i / (k - 1)),
            "benchmark": name,
            "num_fewshot": 0,
            "accuracy": acc,
            "n": n,
            "random_baseline": baseline,
        }
        if stderr is not None:
            row["stderr"] = stderr(acc)
        if majority is not None:
            row["majority_rate"] = majority
        rows.append(row)
    return pd.DataFrame(rows)


def macro_stderr(acc: float) -> float:
    return float(np.sqrt((acc * (1 - acc) / MMLU_SIZES).sum()) / MMLU_SIZES.size)


CASES = [
    # 1. short series judged as strictly as long ones: ties and near-ties within noise are fine
    ("4 points, last a near-tie (was poorly_behaved)", [0.60, 0.65, 0.70, 0.699], {}, "robust"),
    ("4 points, last an exact tie (was poorly_behaved)", [0.60, 0.65, 0.70, 0.70], {}, "robust"),
    ("3 points, last a near-tie", [0.60, 0.70, 0.69], {}, "robust"),
    ("5 points, two near-ties (was poorly_behaved)", [0.60, 0.65, 0.649, 0.70, 0.699], {}, "robust"),
    # 2. at chance is noise, robustly
    (
        "57-subject macro-average 24.4 -> 26.9% (was robust)",
        [0.244, 0.251, 0.256, 0.262, 0.269],
        {"n": int(MMLU_SIZES.sum()), "stderr": macro_stderr},
        "noise",
    ),
    ("flat at chance, one high last point (was poorly_behaved)", [0.25, 0.25, 0.25, 0.25, 0.27], {}, "noise"),
    ("at chance, last point low", [0.25, 0.27, 0.26, 0.27, 0.25], {}, "noise"),
    ("the same with its last checkpoint cut (was poorly_behaved)", [0.25, 0.27, 0.26, 0.27], {}, "noise"),
    (
        "baseline 0, a few correct answers (was poorly_behaved)",
        [0, 0, 0.001, 0, 0.002],
        {"n": 1000, "baseline": 0.0},
        "noise",
    ),
    (
        "binary task answered 'always yes' at the majority rate (was poorly_behaved)",
        [0.62, 0.62, 0.621, 0.62, 0.622],
        {"n": 3270, "baseline": 0.5, "majority": 0.62},
        "noise",
    ),
    # 3. no evidence is not evidence of misbehaviour
    (
        "perfectly ordered 3 points, small gain (was poorly_behaved)",
        [0.30, 0.31, 0.32],
        {"n": 500},
        "inconclusive",
    ),
    (
        "too noisy to tell (n=100) (was poorly_behaved)",
        [0.40, 0.36, 0.44, 0.42, 0.47],
        {"n": 100},
        "inconclusive",
    ),
    (
        "rising but over 0.1 decades of FLOPs, n=300",
        [0.40, 0.41, 0.40, 0.42],
        {"n": 300, "decades": 0.1},
        "inconclusive",
    ),
    (
        "precisely flat above chance over 4 decades",
        [0.45, 0.46, 0.44, 0.45, 0.455],
        {"n": 1000},
        "poorly_behaved",
    ),
    ("a fall beyond noise", [0.30, 0.40, 0.33, 0.45, 0.50], {"n": 1000}, "poorly_behaved"),
]


@pytest.mark.parametrize(("name", "accs", "kw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_issue_cases(name, accs, kw, expected):
    red = reduce_table(valid(series_table(accs, **kw)), pinned_options())
    row = red.classification.iloc[0]
    assert row["group"] == expected, row["reason"]
    assert 0.0 <= row["confidence"] <= 1.0


def test_macro_average_uses_the_stderr_not_all_items_as_one_binomial():
    accs = [0.244, 0.251, 0.256, 0.262, 0.269]
    red = reduce_table(
        valid(series_table(accs, n=int(MMLU_SIZES.sum()), stderr=macro_stderr)), pinned_options(bootstrap=0)
    )
    ps = red.per_shot.iloc[0]
    # 57 subjects of unequal size carry fewer items' worth of information than 14,042 pooled items
    assert ps["n_eff_min"] == pytest.approx(0.244 * 0.756 / macro_stderr(0.244) ** 2)
    assert ps["n_eff_min"] < 0.75 * MMLU_SIZES.sum()


def test_reason_prints_the_best_point_not_the_last():
    red = reduce_table(valid(series_table([0.20, 0.224, 0.21, 0.19], n=500)), pinned_options(bootstrap=0))
    assert "best 0-shot 0.224 (c1)" in red.classification.iloc[0]["reason"]


def test_borderline_and_clear_verdicts():
    clear = reduce_table(valid(series_table([0.30, 0.40, 0.50, 0.60])), pinned_options())
    assert (
        clear.classification.iloc[0]["confidence"] == 1.0 and not clear.classification.iloc[0]["borderline"]
    )
    # an undetermined series sits between "rises" and "flat": its verdict is a coin flip, and says so
    vague = reduce_table(
        valid(series_table([0.30, 0.31, 0.32], n=500)), pinned_options()
    ).classification.iloc[0]
    assert vague["group"] == "inconclusive" and vague["borderline"] and vague["confidence"] < 0.8
    assert vague["redraw_alternative"].split()[0] in ("robust", "noise", "poorly_behaved")


# ---- property: subsampling a clear trend keeps its verdict ---------------------------------------

SUBSETS = {4: [0, 4, 9, 13], 5: [0, 3, 6, 10, 13], 14: list(range(14))}


@settings(max_examples=30, deadline=None)
@given(
    start=st.floats(0.30, 0.60),
    gain=st.floats(0.10, 0.30),
    shape=st.floats(0.5, 2.0),
    n=st.integers(1000, 5000),
    decades=st.floats(1.4, 4.0),
    wiggle=st.lists(st.floats(-0.5, 0.5), min_size=14, max_size=14),
    decimals=st.sampled_from([2, 3]),
)
def test_subsampling_a_clear_trend_never_changes_its_verdict(
    start, gain, shape, n, decades, wiggle, decimals
):
    """A rising trend (+0.10..0.30 over the range, any curvature) on 14 checkpoints, each point moved
    by at most half its standard error and reported with 2 or 3 decimals (ties, swaps), gets the same
    verdict from the 14 points and from 4 and 5 of them (first and last kept)."""
    t = np.linspace(0.0, 1.0, 14)
    truth = start + gain * t**shape
    acc = np.round(truth + np.array(wiggle) * np.sqrt(truth * (1 - truth) / n), decimals)
    flops = 10.0 ** (18 + decades * t)
    verdicts = {}
    for k, idx in SUBSETS.items():
        table = series_table(list(acc[idx]), n=n).assign(flops=flops[idx])
        verdicts[k] = reduce_table(valid(table), pinned_options(bootstrap=0)).classification.iloc[0]["group"]
    assert set(verdicts.values()) == {"robust"}, verdicts
