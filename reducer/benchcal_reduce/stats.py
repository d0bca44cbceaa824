"""The statistics of the reducer, as plain vectorised functions on numpy arrays.

Every function works on a batch of series of equal length ``k`` (a 2-D array, one row per
(benchmark, shots) series, columns ordered by increasing training FLOPs), so a table of
hundreds of series costs a handful of numpy calls. Null distributions of the rank tests are
computed once per ``k`` and cached.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import special, stats

# ---- multiple testing ----------------------------------------------------------------------------


def adjust_pvalues(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """Adjusted p-values over a whole family: Benjamini–Hochberg ("bh") or Holm ("holm").

    NaN entries are not part of the family and stay NaN.
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")
    ranked = q[order]
    if method == "bh":
        adj = ranked * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]  # step-up: monotone from the largest p down
    elif method == "holm":
        adj = ranked * (m - np.arange(m))
        adj = np.maximum.accumulate(adj)  # step-down: monotone from the smallest p up
    else:
        raise ValueError(f"unknown correction {method!r} (use 'bh' or 'holm')")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


# ---- above chance --------------------------------------------------------------------------------


def above_chance_pvalues(accuracy: np.ndarray, n: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """One-sided exact binomial p-value of P(X >= observed correct | n, p = random baseline).

    Accuracy may be a macro average (not an integer count over n); the count is rounded.
    A baseline of 0 makes any correct answer impossible by chance (p = 0), and none p = 1.
    """
    n = np.asarray(n, dtype=float)
    correct = np.rint(np.asarray(accuracy, dtype=float) * n)
    return stats.binom.sf(correct - 1, n, np.asarray(baseline, dtype=float))


# ---- rank correlations ---------------------------------------------------------------------------


def spearman_rows(y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row against its column order (x = log FLOPs, already sorted, no ties)."""
    k = y.shape[1]
    ry = stats.rankdata(y, axis=1)  # midranks for tied accuracies
    rx = np.arange(1, k + 1, dtype=float)
    ry_c = ry - ry.mean(axis=1, keepdims=True)
    rx_c = rx - rx.mean()
    denom = np.sqrt((ry_c**2).sum(axis=1) * (rx_c**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ry_c * rx_c).sum(axis=1) / denom
    return np.where(denom > 0, rho, 0.0)  # a constant series has no rank association


def _pair_signs(y: np.ndarray) -> np.ndarray:
    """sign(y_j - y_i) for i < j, shape (rows, pairs)."""
    i, j = np.triu_indices(y.shape[1], k=1)
    return np.sign(y[:, j] - y[:, i])


def kendall_rows(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kendall's tau-b of each row against column order, and the number of non-increasing pairs.

    The second value counts tied pairs as discordant: it is the inversion count of the
    least favourable way to break the ties, used for a conservative exact test.
    """
    k = y.shape[1]
    s = _pair_signs(y)
    pairs = k * (k - 1) / 2
    concordant = (s > 0).sum(axis=1)
    discordant = (s < 0).sum(axis=1)
    tied = pairs - concordant - discordant
    with np.errstate(invalid="ignore", divide="ignore"):
        tau_b = (concordant - discordant) / np.sqrt(pairs * (pairs - tied))
    tau_b = np.where(pairs - tied > 0, tau_b, 0.0)
    return tau_b, discordant + tied


@cache
def inversion_cdf(k: int) -> np.ndarray:
    """P(inversions <= s) for a uniformly random permutation of k items (Mahonian distribution).

    Built by the recurrence "insert item m at any of m positions": exact up to float rounding,
    O(k^3), so exact permutation p-values are cheap for 3 checkpoints and for 300.
    """
    dist = np.array([1.0])
    for m in range(2, k + 1):
        # item m adds 0..m-1 inversions: new[s] = sum(dist[s-m+1 .. s]), a moving sum via cumsum
        csum = np.concatenate([[0.0], np.cumsum(np.concatenate([dist, np.zeros(m - 1)]))])
        s = np.arange(dist.size + m - 1)
        dist = (csum[s + 1] - csum[np.maximum(s + 1 - m, 0)]) / m
    return np.minimum(np.cumsum(dist), 1.0)


def kendall_trend_pvalues(inversions: np.ndarray, k: int) -> np.ndarray:
    """Exact one-sided permutation p-value of an increasing trend: P(inversions <= observed)."""
    cdf = inversion_cdf(k)
    return cdf[np.asarray(inversions, dtype=int)]


def min_trend_pvalue(k: int) -> float:
    """Smallest p-value the exact rank test can give with k checkpoints (1/k!)."""
    return float(np.exp(-special.gammaln(k + 1)))


def fisher_ci(r: np.ndarray, k: int, kind: str, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Approximate confidence interval of a rank correlation via Fisher's z.

    Standard errors: Bonett & Wright (2000) for Spearman, sqrt((1 + r^2/2)/(k - 3)); Fieller et
    al. (1957) for Kendall, sqrt(0.437/(k - 4)). Undefined (NaN) below 4 / 5 points. A perfect
    correlation has an infinite z; it is evaluated at the next achievable value instead (one
    adjacent swap), which gives an honest, if conservative, lower bound.
    """
    r = np.asarray(r, dtype=float)
    if kind == "spearman":
        if k <= 3:
            return np.full_like(r, np.nan), np.full_like(r, np.nan)
        cap = 1 - 12 / (k * (k * k - 1))
        rc = np.clip(r, -cap, cap)
        se = np.sqrt((1 + rc**2 / 2) / (k - 3))
    elif kind == "kendall":
        if k <= 4:
            return np.full_like(r, np.nan), np.full_like(r, np.nan)
        cap = 1 - 4 / (k * (k - 1))
        rc = np.clip(r, -cap, cap)
        se = np.full_like(rc, np.sqrt(0.437 / (k - 4)))
    else:
        raise ValueError(kind)
    z = np.arctanh(rc)
    half = stats.norm.ppf(0.5 + level / 2) * se
    lo, hi = np.tanh(z - half), np.tanh(z + half)
    return np.where(r <= -1, -1.0, lo), np.where(r >= 1, 1.0, hi)


# ---- sampling-noise tests ------------------------------------------------------------------------


def slope_test(y: np.ndarray, n: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares slope of accuracy on x (log10 FLOPs) and its one-sided p-value.

    Null: every checkpoint has the same true accuracy (the pooled one), so each point is
    binomial noise with variance p(1-p)/n_i; weights 1/var. A series with pooled accuracy 0
    or 1 carries no evidence of a trend (p = 1).
    """
    pooled = (y * n).sum(axis=1, keepdims=True) / n.sum(axis=1, keepdims=True)
    var0 = pooled * (1 - pooled)
    w = np.where(var0 > 0, n / np.where(var0 > 0, var0, 1.0), 0.0)
    wsum = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar = (w * x).sum(axis=1, keepdims=True) / wsum
        sxx = (w * (x - xbar) ** 2).sum(axis=1)
        slope = (w * (x - xbar) * y).sum(axis=1) / sxx
        z = slope * np.sqrt(sxx)
    ok = (var0[:, 0] > 0) & (sxx > 0)
    slope = np.where(ok, slope, 0.0)
    p = np.where(ok, stats.norm.sf(np.where(ok, z, 0.0)), 1.0)
    return slope, p


def drop_test(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest decrease between consecutive checkpoints and its Bonferroni-adjusted p-value.

    Each step is a one-sided two-proportion z-test (pooled variance) for a decrease; the k-1
    steps of a series are one family, so "any step significantly down" at level alpha is
    min p * (k - 1) <= alpha (Holm's first step). A drop within noise does not count.
    """
    d = np.diff(y, axis=1)
    n0, n1 = n[:, :-1], n[:, 1:]
    pooled = (y[:, :-1] * n0 + y[:, 1:] * n1) / (n0 + n1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, -d / np.where(se > 0, se, 1.0), 0.0)
    p_step = np.where(d < 0, stats.norm.sf(z), 1.0)
    steps = y.shape[1] - 1
    p_any = np.minimum(p_step.min(axis=1) * steps, 1.0)
    return np.maximum(-d.min(axis=1), 0.0), p_any


def signal_to_noise(slope: np.ndarray, x: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Gain predicted by the fitted slope over the FLOPs range, in units of one checkpoint's noise.

    Noise = root-mean binomial standard error of the series' points; a series of exact 0s or
    1s has no noise and gets NaN.
    """
    noise = np.sqrt((y * (1 - y) / n).mean(axis=1))
    gain = slope * (x.max(axis=1) - x.min(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(noise > 0, gain / np.where(noise > 0, noise, 1.0), np.nan)
