"""Is a series monotone in training FLOPs, within its sampling noise? Vectorised order-restricted tests.

Every function works on a batch of series of equal length ``k`` (2-D arrays, one row per
series, columns in increasing FLOPs). Three questions, three tests (docs/reducer.md):

- **rising** — is there an increase at all? Likelihood-ratio test of "all checkpoints have
  the same accuracy" against "accuracy is non-decreasing" (Bartholomew's chi-bar-square test,
  Robertson, Wright & Dykstra 1988, §2.3). The alternative is fitted by isotonic regression,
  so the test uses the size of every gain and its binomial noise, not just ranks: its power
  does not collapse at 4–5 checkpoints the way an exact rank test (min p = 1/k!) does.
- **drop** — is some later checkpoint below an earlier one by more than noise? The largest
  pairwise fall in standard errors, against its exact null distribution for k checkpoints
  of equal true accuracy, the least favourable non-decreasing truth (so the test keeps its
  level under any non-decreasing truth and at any length).
- **flat** — is the series precise enough to rule out a meaningful rise? Upper confidence
  bound of the weighted least-squares slope per decade of FLOPs.

Null distributions depend only on ``k`` (and alpha) and are computed once and cached.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import optimize, special, stats

# ---- isotonic regression -------------------------------------------------------------------------


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted non-decreasing least-squares fit of each row (the binomial MLE under order when
    w = n), by pool-adjacent-violators run on all rows at once: every pass merges each pair of
    adjacent blocks whose means are out of order (any order of merging reaches the same, unique
    fit; merging a whole decreasing run at once is such an order), and only rows that changed
    take another pass. A pass is two bincounts over the active rows, so a batch of series costs
    O(rows * k * passes), with few passes except for long series that end in a deep fall."""
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    rows, k = y.shape
    fit = y.copy()
    starts = np.ones((rows, k), dtype=bool)  # a block starts at this column
    active = np.arange(rows)
    wy = w * y
    while active.size and k > 1:
        st = starts[active]
        block = np.cumsum(st, axis=1) - 1 + (np.arange(active.size) * k)[:, None]
        total_w = np.bincount(block.ravel(), w[active].ravel(), minlength=active.size * k)
        total_wy = np.bincount(block.ravel(), wy[active].ravel(), minlength=active.size * k)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (total_wy / total_w)[block]
        fit[active] = means
        violated = st[:, 1:] & (means[:, :-1] > means[:, 1:])
        changed = violated.any(axis=1)
        st[:, 1:] &= ~violated
        starts[active] = st
        active = active[changed]
    return fit


# ---- rising: chi-bar-square likelihood-ratio test ------------------------------------------------


@cache
def level_probabilities(k: int) -> np.ndarray:
    """P(l, k), l = 1..k: the probability that the isotonic fit of k exchangeable values with
    equal weights has l distinct levels (= |Stirling numbers of the first kind| / k!, Miles
    1959), by the recurrence P(l,k) = P(l-1,k-1)/k + (k-1)/k * P(l,k-1). Index l-1."""
    prob = np.array([1.0])
    for m in range(2, k + 1):
        nxt = np.zeros(m)
        nxt[1:] += prob / m
        nxt[:-1] += prob * (m - 1) / m
        prob = nxt
    return prob


def chibar_rise_sf(t: np.ndarray, k: int) -> np.ndarray:
    """P(T01 >= t) under "all equal": sum_l P(l,k) P(chi2_{l-1} >= t) (chi2_0 is a point mass at 0,
    so t = 0 gives p = 1)."""
    t = np.asarray(t, dtype=float)
    prob = level_probabilities(k)
    df = np.arange(1, k)  # l = 2..k
    tail = (prob[1:] * stats.chi2.sf(np.maximum(t, 0.0)[..., None], df)).sum(axis=-1)
    return np.where(t > 1e-12, np.minimum(tail, 1.0), 1.0)


@cache
def rise_critical(k: int, alpha: float) -> float:
    """The T01 value whose chi-bar-square tail is alpha (decisions compare against it)."""
    return float(optimize.brentq(lambda c: chibar_rise_sf(np.array(c), k) - alpha, 1e-9, 500.0, xtol=1e-10))


def binomial_rise_statistic(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Likelihood-ratio statistic 2[l(isotonic fit) - l(pooled)] for proportions y on n items,
    and the fit. Rows stuck at 0 or 1 give 0 (no evidence of any trend)."""
    fit = isotonic(y, n)
    pooled = (y * n).sum(axis=1, keepdims=True) / n.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ll = special.xlogy(y, fit) + special.xlogy(1 - y, 1 - fit)
        ll0 = special.xlogy(y, pooled) + special.xlogy(1 - y, 1 - pooled)
        t = 2 * (n * (ll - ll0)).sum(axis=1)
    return np.where(np.isfinite(t), np.maximum(t, 0.0), 0.0), fit


def gaussian_rise_statistic(y: np.ndarray, se: np.ndarray) -> np.ndarray:
    """sum w (fit - weighted mean)^2 with w = 1/se^2: the same test for a continuous metric."""
    w = 1.0 / se**2
    fit = isotonic(y, w)
    mean = (w * y).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
    return (w * (fit - mean) ** 2).sum(axis=1)


# ---- drop: the largest fall from an earlier to a later checkpoint --------------------------------

_DROP_GRID = np.arange(0.0, 8.0 + 1e-9, 0.05)  # pair z values at which the null tail is tabulated


@cache
def _drop_null(k: int) -> np.ndarray:
    """P(max_{i<j} (Z_i - Z_j)/sqrt(2) > d) for k iid standard normals, at d in _DROP_GRID.

    Exact up to discretisation: follow the running maximum M_j; the next value Z must stay
    above M_j - c (c = d*sqrt(2)), so the density g_j of M_j on "no fall > c so far" obeys
    g_{j+1}(m) = g_j(m) (Phi(m) - Phi(m - c)) + phi(m) G_j(m), G_j = integral of g_j up to m.
    """
    grid = np.linspace(-9.0, 9.0, 1801)
    h = grid[1] - grid[0]
    phi = stats.norm.pdf(grid)
    c = _DROP_GRID[:, None] * np.sqrt(2.0)
    stay = stats.norm.cdf(grid)[None, :] - stats.norm.cdf(grid[None, :] - c)
    g = np.broadcast_to(phi, (c.shape[0], grid.size)).copy()
    for _ in range(k - 1):
        cum = np.concatenate(
            [np.zeros((g.shape[0], 1)), np.cumsum((g[:, 1:] + g[:, :-1]) * h / 2, axis=1)], axis=1
        )
        g = g * stay + phi * cum
    inside = ((g[:, 1:] + g[:, :-1]) * h / 2).sum(axis=1)
    return np.clip(1.0 - inside, 0.0, 1.0)


def drop_sf(d: np.ndarray, k: int) -> np.ndarray:
    """p-value of an observed largest pairwise fall d (in standard errors) among k checkpoints:
    the tabulated exact null (log-linear interpolation), capped by the union bound over the
    k(k-1)/2 pairs, which also covers d beyond the table. d = 0 (no fall at all) gives 1."""
    d = np.asarray(d, dtype=float)
    null = _drop_null(k)
    logp = np.interp(d, _DROP_GRID, np.log(np.maximum(null, 1e-300)))
    union = k * (k - 1) / 2 * stats.norm.sf(d)
    p = np.minimum(np.where(d <= _DROP_GRID[-1], np.exp(logp), 1.0), union)
    return np.where(d > 0, np.minimum(p, 1.0), 1.0)


@cache
def drop_critical(k: int, alpha: float) -> float:
    """The largest fall (in standard errors) that is significant at alpha for k checkpoints."""
    return float(optimize.brentq(lambda d: drop_sf(np.array(d), k) - alpha, 1e-6, 40.0, xtol=1e-8))


def binomial_max_drop(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest fall from an earlier to a later checkpoint, in standard errors, and in accuracy.

    On the variance-stabilising arcsine scale a = asin(sqrt(y)), Var(a) ~ 1/(4n) whatever the
    accuracy, so the fall from point i to point j is z = (a_i - a_j) / sqrt(1/(4 n_i) + 1/(4 n_j))
    (better behaved near 0 and 1 than a Wald z). Rows with one n throughout (the usual case)
    take the maximum over pairs with a running maximum in O(k); others compare all pairs.
    A tie or a rise is no fall (z = 0).
    """
    a = np.arcsin(np.sqrt(np.clip(y, 0.0, 1.0)))
    var = 1.0 / (4.0 * n)
    z = np.zeros(y.shape[0])
    equal = (n == n[:, :1]).all(axis=1)
    if equal.any():
        fall = np.maximum.accumulate(a[equal], axis=1) - a[equal]
        z[equal] = fall.max(axis=1) / np.sqrt(2 * var[equal, 0])
    if (~equal).any():
        i, j = np.triu_indices(y.shape[1], k=1)
        ae, ve = a[~equal], var[~equal]
        z[~equal] = np.maximum(((ae[:, i] - ae[:, j]) / np.sqrt(ve[:, i] + ve[:, j])).max(axis=1), 0.0)
    drop = (np.maximum.accumulate(y, axis=1) - y).max(axis=1)
    return z, drop


def gaussian_max_drop(y: np.ndarray, se: np.ndarray) -> np.ndarray:
    """The same for a continuous metric with standard errors se (all pairs)."""
    i, j = np.triu_indices(y.shape[1], k=1)
    fall = y[:, i] - y[:, j]
    return np.maximum((fall / np.sqrt(se[:, i] ** 2 + se[:, j] ** 2)).max(axis=1), 0.0)


# ---- flat: how large a rise is still compatible with the data ------------------------------------


def slope_bound(y: np.ndarray, n: np.ndarray, x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares slope of accuracy per unit x (x = log10 FLOPs: per decade) and its
    one-sided upper (1 - alpha) bound. Binomial variance from the pooled accuracy with half a
    correct answer added (Jeffreys-style), so a series stuck at 0 on 20 items is not "precisely
    flat"; equal FLOPs everywhere give an infinite bound (no evidence either way)."""
    n_sum = n.sum(axis=1, keepdims=True)
    pooled = ((y * n).sum(axis=1, keepdims=True) + 0.5) / (n_sum + 1.0)
    w = n / (pooled * (1 - pooled))
    wsum = w.sum(axis=1, keepdims=True)
    xbar = (w * x).sum(axis=1, keepdims=True) / wsum
    sxx = (w * (x - xbar) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, (w * (x - xbar) * y).sum(axis=1) / sxx, 0.0)
        upper = np.where(sxx > 0, slope + stats.norm.isf(alpha) / np.sqrt(sxx), np.inf)
    return slope, upper
