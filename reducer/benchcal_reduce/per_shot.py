"""Per (benchmark, shot count) decisions: above chance and monotone in training FLOPs.

Input is the validated long table; output is one row per (benchmark, num_fewshot) with the
decisions and the statistics behind them (the ``per_shot.csv`` of the report). Series are
batched by their number of checkpoints so every test runs as one numpy call per length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchcal_reduce import stats
from benchcal_reduce.table import MIN_CHECKPOINTS

SERIES_KEY = ["benchmark", "num_fewshot"]


def pool_equal_flops(df: pd.DataFrame) -> pd.DataFrame:
    """One point per (benchmark, shots, FLOPs): checkpoints with equal FLOPs (e.g. two seeds)
    are pooled as one bigger sample (correct answers and n summed), not treated as a tie."""
    key = [*SERIES_KEY, "flops"]
    work = df[[*key, "checkpoint", "accuracy", "n", "random_baseline"]].assign(
        correct=df["accuracy"] * df["n"]
    )
    shared = work.duplicated(key, keep=False).to_numpy()
    single = work[~shared]  # the common case: nothing to pool, no per-group Python
    pooled = (
        work[shared]
        .groupby(key, sort=False)
        .agg(
            correct=("correct", "sum"),
            n=("n", "sum"),
            random_baseline=("random_baseline", "mean"),
            checkpoint=("checkpoint", lambda s: "+".join(sorted(s))),
        )
        .reset_index()
    )
    out = pd.concat([single.drop(columns="accuracy"), pooled], ignore_index=True)
    out["accuracy"] = out["correct"] / out["n"]
    out["log_flops"] = np.log10(out["flops"])
    return out.drop(columns="correct")


def _empty_stats(keys: pd.DataFrame) -> pd.DataFrame:
    cols = {
        "n_points": 0,
        "flops_max": np.nan,
        "accuracy_first": np.nan,
        "accuracy_last": np.nan,
        "accuracy_max": np.nan,
        "random_baseline": np.nan,
        "n_last": 0,
        "above_chance_p": np.nan,
        "spearman": np.nan,
        "spearman_lo": np.nan,
        "spearman_hi": np.nan,
        "kendall": np.nan,
        "kendall_lo": np.nan,
        "kendall_hi": np.nan,
        "trend_p": np.nan,
        "slope": np.nan,
        "slope_p": np.nan,
        "max_drop": np.nan,
        "drop_p": np.nan,
        "strict_increasing": False,
        "snr": np.nan,
    }
    out = keys.copy()
    for c, v in cols.items():
        out[c] = v
    return out


def series_statistics(points: pd.DataFrame) -> pd.DataFrame:
    """Every statistic of every (benchmark, shots) series; decisions come later (``decide``)."""
    points = points.sort_values([*SERIES_KEY, "flops"], kind="mergesort").reset_index(drop=True)
    sizes = points.groupby(SERIES_KEY, sort=True).size()
    keys = sizes.index.to_frame(index=False)
    out = _empty_stats(keys)
    starts = np.concatenate([[0], np.cumsum(sizes.to_numpy())[:-1]])
    lengths = sizes.to_numpy()
    acc_all = points["accuracy"].to_numpy()
    n_all = points["n"].to_numpy(dtype=float)
    x_all = points["log_flops"].to_numpy()
    for k in np.unique(lengths):
        rows = np.flatnonzero(lengths == k)
        idx = starts[rows, None] + np.arange(k)  # (series, k) gather index, FLOPs ascending
        y, n, x = acc_all[idx], n_all[idx], x_all[idx]
        o = out.index[rows]
        out.loc[o, "n_points"] = k
        out.loc[o, "flops_max"] = points["flops"].to_numpy()[idx[:, -1]]
        out.loc[o, "accuracy_first"] = y[:, 0]
        out.loc[o, "accuracy_last"] = y[:, -1]
        out.loc[o, "accuracy_max"] = y.max(axis=1)
        out.loc[o, "random_baseline"] = points["random_baseline"].to_numpy()[idx[:, -1]]
        out.loc[o, "n_last"] = n[:, -1]
        out.loc[o, "strict_increasing"] = (np.diff(y, axis=1) > 0).all(axis=1) if k > 1 else False
        if k < MIN_CHECKPOINTS:
            continue
        rho = stats.spearman_rows(y)
        tau, inversions = stats.kendall_rows(y)
        slope, slope_p = stats.slope_test(y, n, x)
        max_drop, drop_p = stats.drop_test(y, n)
        out.loc[o, "spearman"] = rho
        out.loc[o, ["spearman_lo", "spearman_hi"]] = np.column_stack(stats.fisher_ci(rho, int(k), "spearman"))
        out.loc[o, "kendall"] = tau
        out.loc[o, ["kendall_lo", "kendall_hi"]] = np.column_stack(stats.fisher_ci(tau, int(k), "kendall"))
        out.loc[o, "trend_p"] = stats.kendall_trend_pvalues(inversions, int(k))
        out.loc[o, "slope"] = slope
        out.loc[o, "slope_p"] = slope_p
        out.loc[o, "max_drop"] = max_drop
        out.loc[o, "drop_p"] = drop_p
        out.loc[o, "snr"] = stats.signal_to_noise(slope, x, y, n)
    out["above_chance_p"] = stats.above_chance_pvalues(
        out["accuracy_last"].to_numpy(), out["n_last"].to_numpy(), out["random_baseline"].to_numpy()
    )
    out["n_points"] = out["n_points"].astype(int)
    out["n_last"] = out["n_last"].astype(int)
    out["strict_increasing"] = out["strict_increasing"].astype(bool)
    return out


def decide(per_shot: pd.DataFrame, *, alpha: float, strict: bool, correction: str) -> pd.DataFrame:
    """Add the decisions: above_chance (corrected over the whole table) and monotone.

    monotone (default) = rank trend (exact Kendall permutation p <= alpha; with so few
    checkpoints that 1/k! > alpha, no rank test can reach alpha and it is not required) AND
    sampling-noise trend (weighted slope p <= alpha) AND no consecutive drop beyond noise
    (Bonferroni over the series' steps). strict = the study's plain check: every step up.
    """
    out = per_shot.copy()
    testable = out["n_points"].to_numpy() >= MIN_CHECKPOINTS
    p = np.where(testable, out["above_chance_p"].to_numpy(), np.nan)
    out["above_chance_q"] = stats.adjust_pvalues(p, correction)
    out["above_chance"] = testable & (out["above_chance_q"].to_numpy() <= alpha)
    k = out["n_points"].to_numpy()
    reachable = np.array([stats.min_trend_pvalue(int(v)) <= alpha for v in k])
    out["rank_test_used"] = testable & reachable
    rank_ok = np.where(reachable, out["trend_p"].to_numpy() <= alpha, out["kendall"].to_numpy() > 0)
    out["rising"] = testable & rank_ok & (out["slope_p"].to_numpy() <= alpha)
    out["significant_drop"] = testable & (out["drop_p"].to_numpy() <= alpha)
    if strict:
        out["monotone"] = testable & out["strict_increasing"].to_numpy()
    else:
        out["monotone"] = out["rising"].to_numpy() & ~out["significant_drop"].to_numpy()
    return out
