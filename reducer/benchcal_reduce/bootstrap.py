"""Confidence of every verdict: a seeded parametric bootstrap over item counts.

Each redraw replaces every point's correct count by a draw from Binomial(n, accuracy) (n = the
point's effective n, rounded), then re-runs the whole decision chain on the redrawn table:
above-chance p-values, their table-wide correction, the monotone / evidence-against decisions
of every series and the group of every benchmark (``classify.group_codes``: the same rule as
the reported verdict). The confidence of a benchmark is the share of redraws that give its
reported group.

What it measures: how stable the verdict is under the items' sampling noise, if the observed
accuracies were the truth. A verdict whose statistics sit on a threshold gets about one half,
a clear one close to 1. It is not a posterior probability, and it does not cover noise beyond
the items (seeds, prompts); ``classify.BORDERLINE_BELOW`` marks the unstable verdicts.

Cost: every redraw of every series is one more row in the same batched numpy calls; draws are
processed in chunks of about a million (row, checkpoint) cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchcal.classification import GROUPS, MIN_CHECKPOINTS
from benchcal_reduce import classify, stats
from benchcal_reduce.per_shot import Batch, Settings, series_decisions

DEFAULT_DRAWS = 200
_CHUNK_ELEMENTS = 1_000_000  # rows * k per chunk of redraws


def redraw(batch: Batch, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, series, k) redrawn accuracies of one batch."""
    n_int = np.maximum(np.rint(batch.n), 1.0)
    counts = rng.binomial(n_int.astype(np.int64), np.clip(batch.y, 0.0, 1.0), size=(draws, *batch.y.shape))
    return counts / n_int


def redrawn_groups(
    per_shot: pd.DataFrame,
    batches: list[Batch],
    settings: Settings,
    correction: str,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> np.ndarray:
    """Group code of every benchmark in every redraw: (draws, benchmarks)."""
    series = len(per_shot)
    tested = per_shot["n_points"].to_numpy() >= MIN_CHECKPOINTS
    p_above = np.full((draws, series), np.nan)
    mono = np.zeros((draws, series), dtype=bool)
    against = np.zeros((draws, series), dtype=bool)
    rng = np.random.default_rng(seed)
    for batch in batches:
        ys = redraw(batch, draws, rng)
        rows, k = batch.y.shape
        step = max(1, _CHUNK_ELEMENTS // (rows * k))
        for lo in range(0, draws, step):
            chunk = ys[lo : lo + step]
            d = series_decisions(batch, chunk.reshape(-1, k), settings)
            shape = (chunk.shape[0], rows)
            p_above[lo : lo + step, batch.rows] = d["above_chance_p"].reshape(shape)
            mono[lo : lo + step, batch.rows] = d["monotone"].reshape(shape)
            against[lo : lo + step, batch.rows] = d["evidence_against"].reshape(shape)
    q = stats.adjust_pvalues(p_above, correction)
    above = np.nan_to_num(q, nan=1.0) <= settings.alpha
    return classify.group_codes(tested, above, mono, against, classify.benchmark_starts(per_shot))


def group_confidence(
    per_shot: pd.DataFrame,
    batches: list[Batch],
    settings: Settings,
    correction: str,
    observed: np.ndarray,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Per benchmark: the share of redraws with its observed group, and the most frequent other
    group with its share ("robust 0.12"; "" when every redraw agrees). NaN / "" when draws = 0."""
    if draws <= 0:
        return np.full(len(observed), np.nan), [""] * len(observed)
    codes = redrawn_groups(per_shot, batches, settings, correction, draws, seed)
    shares = np.stack([(codes == g).mean(axis=0) for g in range(len(GROUPS))], axis=1)
    confidence = shares[np.arange(len(observed)), observed]
    others = shares.copy()
    others[np.arange(len(observed)), observed] = -1.0
    alt = others.argmax(axis=1)
    alternatives = [f"{GROUPS[a]} {others[b, a]:.2f}" if others[b, a] > 0 else "" for b, a in enumerate(alt)]
    return confidence, alternatives
