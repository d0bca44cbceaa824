"""Multiple testing and rank correlations, as plain vectorised functions on numpy arrays.

Every function works on a batch of series of equal length ``k`` (a 2-D array, one row per
(benchmark, shots) series, columns ordered by increasing training FLOPs), so a table of
hundreds of series costs a handful of numpy calls. The tests that decide a verdict live in
``chance`` (above chance) and ``monotone`` (rising, drop, flat); the rank correlations here
are descriptive (reported, and used to pick the recommended shot count) and the exact
Kendall test serves the composite's trend.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import stats

# ---- multiple testing ----------------------------------------------------------------------------


def adjust_pvalues(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """Adjusted p-values over a whole family: Benjamini–Hochberg ("bh") or Holm ("holm").

    A 2-D array is one family per row (the bootstrap adjusts every redraw at once). NaN entries
    are not part of the family and stay NaN; every row must have its NaNs in the same places.
    """
    p = np.asarray(p, dtype=float)
    if method not in ("bh", "holm"):
        raise ValueError(f"unknown correction {method!r} (use 'bh' or 'holm')")
    rows = np.atleast_2d(p)
    out = np.full_like(rows, np.nan)
    ok = ~np.isnan(rows[0])
    q = rows[:, ok]
    m = q.shape[1]
    if m:
        order = np.argsort(q, axis=1, kind="mergesort")
        ranked = np.take_along_axis(q, order, axis=1)
        if method == "bh":
            adj = ranked * m / np.arange(1, m + 1)
            adj = np.minimum.accumulate(adj[:, ::-1], axis=1)[:, ::-1]  # step-up: from the largest p down
        else:
            adj = ranked * (m - np.arange(m))
            adj = np.maximum.accumulate(adj, axis=1)  # step-down: from the smallest p up
        res = np.empty_like(q)
        np.put_along_axis(res, order, np.minimum(adj, 1.0), axis=1)
        out[:, ok] = res
    return out if p.ndim == 2 else out[0]


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
