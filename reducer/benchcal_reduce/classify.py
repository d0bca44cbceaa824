"""Per-benchmark groups and recommended shot counts, from the per-shot decisions.

Groups (this project's names; the blog numbers them robust=1, shot_dependent=2, noise=3,
poorly_behaved=4):
- noise: above chance at no shot count;
- robust: monotone in FLOPs at every shot count evaluated;
- shot_dependent: monotone at some;
- poorly_behaved: above chance somewhere, monotone nowhere;
- insufficient_data: no shot count has the 3 checkpoints a trend test needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from benchcal.classification import (
    INSUFFICIENT_DATA,
    NOISE,
    POORLY_BEHAVED,
    RECOMMENDING_GROUPS,
    ROBUST,
    SHOT_DEPENDENT,
)

DEFAULT_TIE_SHOTS = 3  # llm-foundry PR #791: no industry standard -> 3 shots


def recommend_shots(candidates: list[dict], standard: int | None) -> int | None:
    """Among monotone settings, the strongest Spearman correlation with log FLOPs; a tie goes to
    the registry's standard shot count, else 3, else the fewest shots (cheapest to evaluate)."""
    if not candidates:
        return None
    best = max(c["spearman"] for c in candidates)
    tied = sorted(int(c["num_fewshot"]) for c in candidates if np.isclose(c["spearman"], best))
    if len(tied) == 1:
        return tied[0]
    if standard is not None and standard in tied:
        return int(standard)
    if DEFAULT_TIE_SHOTS in tied:
        return DEFAULT_TIE_SHOTS
    return tied[0]


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]  # an all-NaN slice is "no estimate", not a warning
    return float(np.mean(finite)) if finite else float("nan")


def _fmt_shots(rows: list[dict]) -> str:
    return ", ".join(str(int(r["num_fewshot"])) for r in rows) or "none"


def _reason(group: str, rows: list[dict], tested: list[dict]) -> str:
    if group == INSUFFICIENT_DATA:
        return f"fewer than 3 checkpoints at every shot count (max {max(r['n_points'] for r in rows)})"
    if group == NOISE:
        best = min(tested, key=lambda r: r["above_chance_q"])
        return (
            f"not above chance at any shot count: best {int(best['num_fewshot'])}-shot "
            f"{best['accuracy_last']:.3f} vs baseline {best['random_baseline']:.3f} "
            f"(n={int(best['n_last'])}, adjusted p={best['above_chance_q']:.3g})"
        )
    mono = [r for r in tested if r["monotone"]]
    parts = [f"monotone at {_fmt_shots(mono)} of {_fmt_shots(tested)} shots"]
    for r in tested:
        if r["monotone"]:
            continue
        if r["significant_drop"]:
            why = f"drop of {r['max_drop']:.3f} beyond noise (p={r['drop_p']:.3g})"
        elif not r["rising"]:
            why = f"no rising trend (rank p={r['trend_p']:.3g}, slope p={r['slope_p']:.3g})"
        else:
            why = "not every step up (strict)"
        parts.append(f"{int(r['num_fewshot'])}-shot: {why}")
    return "; ".join(parts)


def _group(tested: list[dict], above: list[dict], mono: list[dict]) -> str:
    if not tested:
        return INSUFFICIENT_DATA
    if not above:
        return NOISE
    if len(mono) == len(tested):
        return ROBUST
    return SHOT_DEPENDENT if mono else POORLY_BEHAVED


def _nanmax(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return max(finite) if finite else float("nan")


def classify(
    per_shot: pd.DataFrame,
    categories: dict[str, str],
    standard_shots: Callable[[str], int | None],
) -> pd.DataFrame:
    """One row per benchmark: group, recommended shots, reason and key statistics.

    Works on plain records: one pass over the (benchmark, shots) rows, hundreds at most.
    """
    by_bench: dict[str, list[dict]] = {}
    for r in per_shot.sort_values(["benchmark", "num_fewshot"]).to_dict("records"):
        by_bench.setdefault(str(r["benchmark"]), []).append(r)
    records = []
    for name, rows in by_bench.items():
        tested = [r for r in rows if r["n_points"] >= 3]
        above = [r for r in tested if r["above_chance"]]
        mono = [r for r in tested if r["monotone"]]
        group = _group(tested, above, mono)
        standard = standard_shots(name)
        # A monotone setting still at chance is no use as a default; prefer those above chance.
        usable = [r for r in mono if r["above_chance"]] or mono
        recommended = recommend_shots(usable, standard) if group in RECOMMENDING_GROUPS else None
        records.append(
            {
                "benchmark": name,
                "category": categories.get(name, "") or "uncategorized",
                "group": group,
                "recommended_shots": recommended,
                "standard_shots": standard,
                "reason": _reason(group, rows, tested),
                "shots_evaluated": _fmt_shots(rows),
                "shots_above_chance": _fmt_shots(above),
                "shots_monotone": _fmt_shots(mono),
                "n_checkpoints": max(int(r["n_points"]) for r in rows),
                "random_baseline": float(rows[0]["random_baseline"]),
                "max_accuracy": max(float(r["accuracy_max"]) for r in rows),
                "best_spearman": _nanmax([r["spearman"] for r in tested]),
                "min_above_chance_q": min((r["above_chance_q"] for r in tested), default=float("nan")),
                "mean_snr": _nanmean([r["snr"] for r in tested]),
            }
        )
    out = pd.DataFrame.from_records(records)
    out["recommended_shots"] = out["recommended_shots"].astype("Int64")
    out["standard_shots"] = out["standard_shots"].astype("Int64")
    return out
