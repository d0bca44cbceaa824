"""Above chance: floor, margin, effective n, best point."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss

from benchcal_reduce import chance


def test_effective_n_from_stderr_is_capped_at_n():
    acc = np.array([0.3, 0.3, 0.3, 0.0, 0.3])
    n = np.array([1000, 1000, 1000, 1000, 1000])
    se = np.array([np.nan, 0.02, 0.001, 0.01, 0.0])
    neff = chance.effective_n(acc, n, se)
    assert neff[0] == 1000  # no stderr: binomial over n
    assert neff[1] == pytest.approx(0.21 / 0.02**2)  # a macro-average: 525 items' worth
    assert neff[2] == 1000  # smaller than binomial: capped
    assert neff[3] == 1000 and neff[4] == 1000  # uninformative (p = 0, stderr 0)


def test_floor_and_null_rate():
    assert list(chance.floor_rate(np.array([0.5, 0.5, 0.25]), np.array([0.62, np.nan, 0.2]))) == [
        0.62,
        0.5,
        0.25,
    ]
    assert chance.null_rate(np.array([0.25, 0.0, 0.5]), 0.02) == pytest.approx([0.265, 0.02, 0.51])


def test_above_chance_is_the_best_point_exact_binomial_times_k():
    y = np.array([[0.26, 0.31, 0.28, 0.27], [0.0, 0.001, 0.0, 0.002]])
    n = np.array([[500.0] * 4, [1000.0] * 4])
    p0 = np.array([0.265, 0.02])
    p, best = chance.above_chance_test(y, n, p0)
    assert list(best) == [1, 3]
    assert p[0] == pytest.approx(4 * ss.binomtest(155, 500, 0.265, alternative="greater").pvalue)
    assert p[1] == 1.0  # baseline 0 + margin: two correct answers in 1000 are not above 2%


def test_margin_zero_on_baseline_zero_is_the_plain_exact_test():
    p, _ = chance.above_chance_test(np.array([[0.0, 0.0, 0.001]]), np.full((1, 3), 1000.0), np.array([0.0]))
    assert p[0] == 0.0  # the exact test with p0 = 0: any correct answer is impossible by chance
