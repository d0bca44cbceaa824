"""The gauntlet composite per checkpoint, before and after calibration.

llm-foundry's aggregation (eval_gauntlet_callback): per benchmark s = (A - r) / (1 - r)
(subtract the random baseline, rescale), the mean of s over the benchmarks of a category
(EQUAL weighting), then the mean over categories. Only benchmarks scored at every checkpoint
enter, so each checkpoint averages the same set (llm-foundry drops a category with a missing
benchmark; with a fixed set that never happens mid-series).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from benchcal.classification import CALIBRATED_GROUPS  # poorly behaved are removed; noise is flagged
from benchcal_reduce import stats


def composite_scores(
    table: pd.DataFrame, selection: Mapping[str, int], categories: Mapping[str, str]
) -> pd.DataFrame:
    """Composite per checkpoint for benchmarks ``selection`` {name: shots}; columns checkpoint,
    flops, composite, plus one column per category."""
    sel = pd.DataFrame({"benchmark": list(selection), "num_fewshot": [int(v) for v in selection.values()]})
    rows = table.merge(sel, on=["benchmark", "num_fewshot"], how="inner")
    rows = rows.assign(
        score=(rows["accuracy"] - rows["random_baseline"]) / (1 - rows["random_baseline"]),
        cat=rows["benchmark"].map(lambda b: categories.get(b, "") or "uncategorized"),
    )
    if rows.empty:
        empty = table[["checkpoint", "flops"]].drop_duplicates().assign(composite=np.nan)
        return empty.sort_values(["flops", "checkpoint"], kind="mergesort").reset_index(drop=True)
    per_cat = rows.groupby(["checkpoint", "flops", "cat"], sort=True)["score"].mean().unstack("cat")
    out = per_cat.reset_index()
    out.columns.name = None
    out["composite"] = out[list(per_cat.columns)].mean(axis=1)
    return out.sort_values(["flops", "checkpoint"], kind="mergesort").reset_index(drop=True)


def complete_selection(table: pd.DataFrame, selection: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
    """Keep the benchmarks scored at their chosen shots on every checkpoint; list the others."""
    all_ckpts = table["checkpoint"].nunique()
    counts = table.groupby(["benchmark", "num_fewshot"])["checkpoint"].nunique()
    kept, dropped = {}, []
    for name, shots in selection.items():
        if counts.get((name, int(shots)), 0) == all_ckpts:
            kept[name] = int(shots)
        else:
            dropped.append(name)
    return kept, dropped


def composite_trend(scores: pd.DataFrame) -> dict:
    """Is the composite monotone in FLOPs? Every step up (equal-FLOPs checkpoints averaged),
    with the Kendall tau and its exact permutation p-value for context."""
    if scores.empty or scores["composite"].isna().all():
        return {"monotone": False, "kendall": None, "trend_p": None, "points": 0}
    by_flops = scores.groupby("flops", sort=True)["composite"].mean().to_numpy()[None, :]
    k = by_flops.shape[1]
    tau, inversions = stats.kendall_rows(by_flops)
    return {
        "monotone": bool(k > 1 and (np.diff(by_flops[0]) > 0).all()),
        "kendall": float(tau[0]),
        "trend_p": float(stats.kendall_trend_pvalues(inversions, k)[0]),
        "points": int(k),
    }


def before_after(
    table: pd.DataFrame,
    classification: pd.DataFrame,
    default_shots: Mapping[str, int],
    categories: Mapping[str, str],
) -> dict:
    """Composite of the whole suite at default shots vs. the calibrated suite at recommended shots."""
    before_sel, before_dropped = complete_selection(table, default_shots)
    after_pick = {}
    for row in classification.itertuples(index=False):
        if row.group not in CALIBRATED_GROUPS:
            continue
        shots = (
            row.recommended_shots if not pd.isna(row.recommended_shots) else default_shots.get(row.benchmark)
        )
        if shots is not None:
            after_pick[row.benchmark] = int(shots)
    after_sel, after_dropped = complete_selection(table, after_pick)
    before = composite_scores(table, before_sel, categories)
    after = composite_scores(table, after_sel, categories)
    merged = (
        before[["checkpoint", "flops", "composite"]]
        .rename(columns={"composite": "composite_before"})
        .merge(
            after[["checkpoint", "composite"]].rename(columns={"composite": "composite_after"}),
            on="checkpoint",
            how="outer",
        )
    )
    return {
        "per_checkpoint": merged.sort_values(["flops", "checkpoint"]).reset_index(drop=True),
        "before": {
            "benchmarks": before_sel,
            "excluded_incomplete": before_dropped,
            **composite_trend(before),
        },
        "after": {"benchmarks": after_sel, "excluded_incomplete": after_dropped, **composite_trend(after)},
    }
