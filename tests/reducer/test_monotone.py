"""The order-restricted tests against scipy, enumeration, closed forms and simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as ss
from scipy.optimize import isotonic_regression

from benchcal_reduce import monotone


@pytest.mark.parametrize("k", [1, 2, 3, 7, 50])
def test_isotonic_matches_scipy(k):
    rng = np.random.default_rng(k)
    y = rng.uniform(size=(200, k))
    y[:20] = np.sort(y[:20], axis=1)[:, ::-1]  # long decreasing runs: many passes
    y[20:40] = np.round(y[20:40], 1)  # ties
    w = rng.integers(1, 1000, size=(200, k)).astype(float)
    ref = np.array([isotonic_regression(a, weights=b).x for a, b in zip(y, w, strict=True)])
    assert np.allclose(monotone.isotonic(y, w), ref, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_level_probabilities_are_stirling_numbers(k):
    # |s(k, l)| / k! counts permutations with l cycles; Miles (1959): the same law as isotonic levels
    cycles = np.zeros(k + 1)
    for perm in itertools.permutations(range(k)):
        seen, count = set(), 0
        for start in range(k):
            if start not in seen:
                count += 1
                j = start
                while j not in seen:
                    seen.add(j)
                    j = perm[j]
        cycles[count] += 1
    assert np.allclose(monotone.level_probabilities(k), cycles[1:] / math.factorial(k))


def test_level_probabilities_match_isotonic_fits_of_noise():
    rng = np.random.default_rng(1)
    fits = monotone.isotonic(rng.standard_normal((100_000, 5)), np.ones((100_000, 5)))
    levels = 1 + (np.diff(fits, axis=1) > 1e-12).sum(axis=1)
    observed = np.bincount(levels, minlength=6)[1:] / levels.size
    assert np.allclose(observed, monotone.level_probabilities(5), atol=0.005)


@pytest.mark.parametrize("k", [3, 5, 14])
def test_rise_test_has_its_level_under_equal_means(k):
    # Gaussian form with known variance: the chi-bar-square law is exact
    rng = np.random.default_rng(k)
    y = rng.standard_normal((100_000, k))
    t = monotone.gaussian_rise_statistic(y, np.ones_like(y))
    crit = monotone.rise_critical(k, 0.05)
    assert (t >= crit).mean() == pytest.approx(0.05, abs=0.004)
    assert monotone.chibar_rise_sf(np.array([crit]), k)[0] == pytest.approx(0.05)
    assert monotone.chibar_rise_sf(np.array([0.0]), k)[0] == 1.0


def test_binomial_rise_test_level_and_power_at_four_points():
    rng = np.random.default_rng(7)
    crit = monotone.rise_critical(4, 0.05)
    n = np.full((40_000, 4), 2000.0)
    flat = rng.binomial(2000, 0.6, size=n.shape) / 2000
    assert (monotone.binomial_rise_statistic(flat, n)[0] >= crit).mean() == pytest.approx(0.05, abs=0.006)
    # a 1.5-point gain per step on n=2000 (1.4 standard errors a step) is found most of the time
    up = rng.binomial(2000, [0.600, 0.615, 0.630, 0.645], size=n.shape) / 2000
    assert (monotone.binomial_rise_statistic(up, n)[0] >= crit).mean() > 0.9


def test_rise_statistic_is_zero_for_non_rising_and_stuck_series():
    n = np.full((3, 4), 500.0)
    y = np.array([[0.5, 0.4, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0], [0.7, 0.7, 0.7, 0.7]])
    t, fit = monotone.binomial_rise_statistic(y, n)
    assert np.allclose(t, 0.0) and np.allclose(fit[0], 0.35)


def test_drop_null_closed_form_for_two_points():
    d = np.linspace(0.1, 6, 30)
    # exact on the grid, log-linear between its points (0.05 standard errors apart)
    assert np.allclose(monotone.drop_sf(d, 2), ss.norm.sf(d), rtol=1e-3)
    grid = monotone._DROP_GRID[1:]
    assert np.allclose(monotone.drop_sf(grid, 2), ss.norm.sf(grid), rtol=1e-9)


@pytest.mark.parametrize("k", [3, 5, 14, 50])
def test_drop_null_matches_simulation(k):
    rng = np.random.default_rng(k)
    z = rng.standard_normal((200_000, k))
    drawdown = (np.maximum.accumulate(z, axis=1) - z).max(axis=1) / np.sqrt(2)
    crit = monotone.drop_critical(k, 0.05)
    assert (drawdown >= crit).mean() == pytest.approx(0.05, abs=0.002)
    for d in (1.0, 2.0, 3.0):
        assert monotone.drop_sf(np.array([d]), k)[0] == pytest.approx((drawdown > d).mean(), abs=0.004)
    # a series with no fall at all has p = 1; every permutation but the sorted one has some fall
    assert monotone.drop_sf(np.array([0.0]), k)[0] == 1.0
    assert monotone._drop_null(k)[0] == pytest.approx(1 - 1 / math.factorial(k), abs=1e-6)


def test_drop_critical_grows_slowly_with_length():
    crit = [monotone.drop_critical(k, 0.05) for k in (3, 4, 5, 14, 50)]
    assert crit == sorted(crit) and crit[0] > 1.645 and crit[-1] < 4.0


def test_max_drop_equals_brute_force_over_pairs():
    rng = np.random.default_rng(3)
    y = rng.uniform(0.05, 0.95, size=(50, 6))
    n_equal = np.full_like(y, 800.0)
    n_mixed = rng.integers(100, 2000, size=y.shape).astype(float)
    for n in (n_equal, n_mixed):
        z, drop = monotone.binomial_max_drop(y, n)
        a = np.arcsin(np.sqrt(y))
        for r in range(len(y)):
            pairs = [
                ((a[r, i] - a[r, j]) / math.sqrt(1 / (4 * n[r, i]) + 1 / (4 * n[r, j])), y[r, i] - y[r, j])
                for i in range(6)
                for j in range(i + 1, 6)
            ]
            assert z[r] == pytest.approx(max(0.0, max(p[0] for p in pairs)))
            assert drop[r] == pytest.approx(max(0.0, max(p[1] for p in pairs)))
    z, drop = monotone.binomial_max_drop(np.array([[0.1, 0.2, 0.2, 0.3]]), np.full((1, 4), 100.0))
    assert z[0] == 0.0 and drop[0] == 0.0  # ties and rises are no fall


def test_slope_bound_is_weighted_least_squares():
    x = np.log10(np.array([[1e18, 1e19, 1e20, 1e21]]))
    n = np.array([[1000.0, 1000.0, 2000.0, 500.0]])
    y = np.array([[0.30, 0.33, 0.37, 0.39]])
    slope, upper = monotone.slope_bound(y, n, x, 0.05)
    pooled = ((y * n).sum() + 0.5) / (n.sum() + 1)
    w = n[0] / (pooled * (1 - pooled))
    ref = np.polyfit(x[0], y[0], 1, w=np.sqrt(w))[0]
    sxx = (w * (x[0] - np.average(x[0], weights=w)) ** 2).sum()
    assert slope[0] == pytest.approx(ref)
    assert upper[0] == pytest.approx(ref + 1.6448536 / math.sqrt(sxx))
    # one FLOPs value everywhere: no information about the slope
    assert np.isinf(monotone.slope_bound(y, n, np.zeros((1, 4)), 0.05)[1][0])
