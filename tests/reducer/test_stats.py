"""The statistics against brute force and scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as ss

from benchcal_reduce import stats


def test_bh_matches_scipy():
    p = np.random.default_rng(0).uniform(size=40) ** 2
    assert np.allclose(stats.adjust_pvalues(p, "bh"), ss.false_discovery_control(p, method="bh"))


def test_holm_by_hand_and_nan_outside_family():
    p = np.array([0.01, 0.04, np.nan, 0.03])
    # sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, 0.06 (monotone)
    assert np.allclose(stats.adjust_pvalues(p, "holm"), [0.03, 0.06, np.nan, 0.06], equal_nan=True)
    with pytest.raises(ValueError):
        stats.adjust_pvalues(p, "bonferoni")


def test_adjust_rows_is_one_family_per_row():
    rng = np.random.default_rng(4)
    p = rng.uniform(size=(6, 12)) ** 3
    p[:, [2, 7]] = np.nan  # untested series: the same places in every redraw
    rows = stats.adjust_pvalues(p, "bh")
    for r, q in zip(p, rows, strict=True):
        assert np.allclose(q, stats.adjust_pvalues(r, "bh"), equal_nan=True)
    assert np.isnan(rows[:, [2, 7]]).all()
    assert np.allclose(stats.adjust_pvalues(p, "holm")[3], stats.adjust_pvalues(p[3], "holm"), equal_nan=True)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_inversion_cdf_matches_enumeration(k):
    inv = [
        sum(p[i] > p[j] for i in range(k) for j in range(i + 1, k)) for p in itertools.permutations(range(k))
    ]
    assert np.allclose(np.cumsum(np.bincount(inv)) / math.factorial(k), stats.inversion_cdf(k))


def test_kendall_exact_pvalue_matches_scipy_without_ties():
    rng = np.random.default_rng(1)
    y = rng.uniform(size=(30, 8)) + np.linspace(0, 0.5, 8)
    tau, inv = stats.kendall_rows(y)
    p = stats.kendall_trend_pvalues(inv, 8)
    for row, t, pv in zip(y, tau, p, strict=True):
        ref = ss.kendalltau(np.arange(8), row, method="exact", alternative="greater")
        assert t == pytest.approx(ref.statistic)
        assert pv == pytest.approx(ref.pvalue)


def test_ties_make_the_rank_test_conservative():
    _, inv_tied = stats.kendall_rows(np.array([[0.1, 0.2, 0.2, 0.3, 0.4]]))
    _, inv_clean = stats.kendall_rows(np.array([[0.1, 0.2, 0.25, 0.3, 0.4]]))
    assert stats.kendall_trend_pvalues(inv_tied, 5)[0] > stats.kendall_trend_pvalues(inv_clean, 5)[0]
    flat_tau, flat_inv = stats.kendall_rows(np.full((1, 5), 0.25))
    assert flat_tau[0] == 0 and stats.kendall_trend_pvalues(flat_inv, 5)[0] == pytest.approx(1.0)


def test_rank_correlations_match_scipy_with_ties():
    y = np.round(np.random.default_rng(2).uniform(size=(20, 7)), 1)
    assert np.allclose(stats.spearman_rows(y), [ss.spearmanr(np.arange(7), r)[0] for r in y])
    assert np.allclose(stats.kendall_rows(y)[0], [ss.kendalltau(np.arange(7), r)[0] for r in y])
    assert stats.spearman_rows(np.full((1, 4), 0.5))[0] == 0.0


def test_fisher_ci_brackets_and_small_k():
    lo, hi = stats.fisher_ci(np.array([0.5, 1.0]), 10, "spearman")
    assert lo[0] < 0.5 < hi[0] and lo[1] < 1.0 == hi[1]
    assert np.isnan(stats.fisher_ci(np.array([0.5]), 3, "spearman")[0]).all()
    assert np.isnan(stats.fisher_ci(np.array([0.5]), 4, "kendall")[0]).all()
