"""Latent progress: a benchmark at chance on accuracy whose continuous metric already moves.

The optional table columns ``gold_prob``, ``gold_margin`` and ``bits_per_byte``
(``benchcal.results.CONTINUOUS_METRICS``) are tested with the same order-restricted tests as
accuracy (``monotone``), in their Gaussian form: weights 1/se^2, "improves" = a significant
rise and no significant fall, after turning lower-is-better metrics (bits per byte) around.

Standard errors come from ``<metric>_stderr``. Without it only ``gold_prob`` can be tested: a
mean of values in [0, 1] with mean m has variance at most m(1 - m) per item, so
sqrt(m(1 - m)/n) is a conservative standard error. The other two are unbounded, so without a
standard error they are not used, and the report says so; nothing is made up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchcal.results import CONTINUOUS_METRICS
from benchcal_reduce import monotone

BOUNDED_IN_UNIT = ("gold_prob",)  # metrics whose values lie in [0, 1]


def usable_metrics(points: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The continuous metrics the table lets us test, and a note for each one it does not."""
    usable, notes = [], []
    given = [m for m in CONTINUOUS_METRICS if m in points and points[m].notna().any()]
    if not given:
        notes.append(
            "latent-trend check not applied: the table has none of the optional columns "
            f"{', '.join(CONTINUOUS_METRICS)}"
        )
    for m in given:
        has_se = points[f"{m}_stderr"].notna().any()
        if has_se or m in BOUNDED_IN_UNIT:
            usable.append(m)
            if not has_se:
                notes.append(f"{m}: no {m}_stderr column; using the bound sqrt(m(1-m)/n) (conservative)")
        else:
            notes.append(
                f"{m} given without {m}_stderr: not used (an unbounded mean needs its standard error)"
            )
    return usable, notes


def metric_series(
    values: np.ndarray, stderr: np.ndarray, n: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y oriented so that higher is better, its standard error, which rows are testable)."""
    if metric in BOUNDED_IN_UNIT:
        bound = np.sqrt(np.clip(values * (1 - values), 0.0, None) / n)
        se = np.where(np.isfinite(stderr), stderr, bound)
    else:
        se = stderr
    y = -values if CONTINUOUS_METRICS[metric] == "lower" else values
    ok = (np.isfinite(y) & np.isfinite(se) & (se > 0)).all(axis=1)
    return np.where(np.isfinite(y), y, 0.0), np.where(ok[:, None], se, 1.0), ok


def improves(y: np.ndarray, se: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """Rising and not falling, for a batch of equal-length continuous series."""
    k = y.shape[1]
    rise = monotone.gaussian_rise_statistic(y, se)
    fall = monotone.gaussian_max_drop(y, se)
    return {
        "rise_p": monotone.chibar_rise_sf(rise, k),
        "drop_p": monotone.drop_sf(fall, k),
        "improves": (rise >= monotone.rise_critical(k, alpha)) & (fall < monotone.drop_critical(k, alpha)),
    }


def latent_trend(rows: list[dict], metrics: list[str], alpha: float) -> tuple[bool, str]:
    """Does some (metric, shot count) of one benchmark improve? The rise p-value is multiplied by
    the number of (metric, shots) series tested (Bonferroni), so testing three metrics at five
    shot counts does not make a flag fifteen times easier to get."""
    tested = [
        (r[f"{m}_rise_p"], m, int(r["num_fewshot"]), bool(r[f"{m}_improves"]))
        for r in rows
        for m in metrics
        if np.isfinite(r.get(f"{m}_rise_p", np.nan))
    ]
    if not tested:
        return False, ""
    candidates = [t for t in tested if t[3]]
    if not candidates:
        return False, ""
    p, metric, shots, _ = min(candidates)
    adjusted = min(p * len(tested), 1.0)
    if adjusted > alpha:
        return False, ""
    direction = "falls" if CONTINUOUS_METRICS[metric] == "lower" else "rises"
    return True, f"{metric} {direction} monotonically at {shots}-shot (adjusted p={adjusted:.3g})"
