"""Above chance, robustly: the right floor, a minimum margin, the real variance, the whole series.

- **Floor** = the random baseline, or the majority-class rate where the table gives one and it
  is higher (a binary task answered "always yes" sits there without any skill).
- **Null rate** p0 = floor + margin * (1 - floor): the margin is on the gauntlet's rescaled
  scale (accuracy - floor) / (1 - floor), so "2 % of the way from chance to perfect" means
  the same on a 4-choice, a binary and an open-ended (baseline 0) task.
- **Effective n** of a point: a macro-average over categories is not one binomial over all
  items; when the table gives its standard error, n_eff = p(1 - p) / stderr^2, capped at n.
- **The whole series**: the best point (largest standardised excess over p0) is tested with
  the exact binomial tail and a Bonferroni factor k for having picked it among k points, so a
  series at chance is not "above chance" because one checkpoint is lucky, and cutting a
  checkpoint changes the evidence by at most that factor, not by which point happens to be last.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def effective_n(accuracy: np.ndarray, n: np.ndarray, stderr: np.ndarray) -> np.ndarray:
    """Binomial-equivalent sample size of each point: min(n, p(1-p)/stderr^2) where the standard
    error is given and informative (0 < p < 1, stderr > 0), else n. Capped at n: a standard
    error below the binomial one of n items (heterogeneous categories, non-binary item scores)
    is itself an estimate, and the tests should not be more confident than the items allow."""
    acc = np.asarray(accuracy, dtype=float)
    n = np.asarray(n, dtype=float)
    se = np.asarray(stderr, dtype=float)
    usable = np.isfinite(se) & (se > 0) & (acc > 0) & (acc < 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = acc * (1 - acc) / np.where(usable, se, 1.0) ** 2
    return np.where(usable, np.minimum(implied, n), n)


def floor_rate(baseline: np.ndarray, majority: np.ndarray) -> np.ndarray:
    """The accuracy a model reaches without skill: max(random baseline, majority-class rate)."""
    majority = np.asarray(majority, dtype=float)
    return np.fmax(np.asarray(baseline, dtype=float), np.where(np.isfinite(majority), majority, -np.inf))


def null_rate(floor: np.ndarray, margin: float) -> np.ndarray:
    """floor + margin on the rescaled scale."""
    floor = np.asarray(floor, dtype=float)
    return floor + margin * (1.0 - floor)


def above_chance_test(y: np.ndarray, n: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-value that the series' best point exceeds p0, and that point's index.

    y, n: (rows, k), FLOPs ascending; p0: (rows,). The best point maximises the standardised
    excess (y - p0) / sqrt(p0 (1 - p0) / n); its tail P(X >= count | round(n), p0) is exact
    binomial; times k for the choice (Bonferroni; picking by z rather than by exact p can only
    make the test more conservative). With p0 = 0 (margin 0 on a baseline-0 task) any correct
    answer is significant, as the exact test says.
    """
    k = y.shape[1]
    p0c = np.asarray(p0, dtype=float)[:, None]
    sd = np.sqrt(np.maximum(p0c * (1 - p0c), 1e-12) / n)
    best = np.argmax((y - p0c) / sd, axis=1)
    rows = np.arange(y.shape[0])
    n_best = np.maximum(np.rint(n[rows, best]), 1.0)
    correct = np.rint(y[rows, best] * n_best)
    tail = stats.binom.sf(correct - 1, n_best, p0c[:, 0])
    return np.minimum(tail * k, 1.0), best
