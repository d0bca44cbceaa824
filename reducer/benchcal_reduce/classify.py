"""Per-benchmark groups and recommended shot counts, from the per-shot decisions.

Groups (this project's names; the blog numbers them robust=1, shot_dependent=2, noise=3,
poorly_behaved=4), over the shot counts with at least 3 checkpoints ("tested"):

- inconclusive: nothing tested, or no shot count is monotone and at least one is undetermined
  (no significant rise, but too few items or too little FLOPs range to call it flat);
- noise: above chance at no tested shot count (flagged ``latent_trend`` when a continuous metric
  already improves);
- robust: above chance somewhere, monotone at every tested shot count;
- shot_dependent: monotone at some;
- poorly_behaved: above chance somewhere, and evidence against monotonicity at every tested
  shot count (a drop beyond noise, or precisely flat).

``group_codes`` is the one implementation of these rules; it runs on one verdict or on every
bootstrap redraw at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from benchcal.classification import (
    GROUPS,  # the one vocabulary of groups (the CRD's count keys)
    INCONCLUSIVE,
    NOISE,
    POORLY_BEHAVED,
    RECOMMENDING_GROUPS,
    ROBUST,
    SHOT_DEPENDENT,
)
from benchcal_reduce import latent

CODE = {g: i for i, g in enumerate(GROUPS)}  # group codes: positions in GROUPS (the bootstrap counts codes)
DEFAULT_TIE_SHOTS = 3  # llm-foundry PR #791: no industry standard -> 3 shots
BORDERLINE_BELOW = 0.8  # a verdict that fewer than 4 in 5 redraws reproduce is borderline


def group_codes(
    tested: np.ndarray, above: np.ndarray, mono: np.ndarray, against: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Group index per benchmark. tested: (series,); above/mono/against: (draws, series) with the
    series sorted by benchmark, ``starts`` = first series of each benchmark. Returns (draws, benchmarks)."""

    def any_of(mask: np.ndarray) -> np.ndarray:
        return np.logical_or.reduceat(mask, starts, axis=1)

    tested = np.broadcast_to(tested, above.shape)
    mono_t = tested & mono
    undetermined = tested & ~mono & ~against
    conditions = [
        ~any_of(tested),
        ~any_of(tested & above),
        ~any_of(tested & ~mono),
        any_of(mono_t),
        any_of(undetermined),
    ]
    choices = [CODE[g] for g in (INCONCLUSIVE, NOISE, ROBUST, SHOT_DEPENDENT, INCONCLUSIVE)]
    return np.select(conditions, choices, CODE[POORLY_BEHAVED])


def benchmark_starts(per_shot: pd.DataFrame) -> np.ndarray:
    """First row of each benchmark in per_shot (sorted by benchmark, then shots)."""
    names = per_shot["benchmark"].to_numpy()
    return np.flatnonzero(np.concatenate([[True], names[1:] != names[:-1]]))


def recommend_shots(candidates: list[dict], standard: int | None) -> int | None:
    """Among monotone settings, the strongest Spearman correlation with log FLOPs; a tie goes to
    the registry's standard shot count, else 3, else the fewest shots (cheapest to evaluate)."""
    if not candidates:
        return None
    best = max(c["spearman"] for c in candidates)
    tied = sorted(
        int(c["num_fewshot"]) for c in candidates if math.isclose(c["spearman"], best, abs_tol=1e-8)
    )
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


def _nanmax(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return max(finite) if finite else float("nan")


def _fmt_shots(rows: list[dict]) -> str:
    return ", ".join(str(int(r["num_fewshot"])) for r in rows) or "none"


def _shots_phrase(rows: list[dict]) -> str:
    return ", ".join(f"{int(r['num_fewshot'])}-shot" for r in rows) or "no shot count"


def _why_not_monotone(r: dict, strict: bool) -> str:
    if strict:
        return "not every step up (strict)"
    if r["significant_drop"]:
        return f"fall of {r['max_drop']:.3f} beyond noise ({r['drop_z']:.1f} standard errors, p={r['drop_p']:.3g})"
    if r["evidence_against"]:
        return (
            f"flat: no significant rise (p={r['rise_p']:.3g}) and at most {r['gain_per_decade_upper']:.3f} "
            "gain per decade of FLOPs (rescaled, 95% bound)"
        )
    return (
        f"too uncertain to tell: no significant rise (p={r['rise_p']:.3g}), yet a gain of up to "
        f"{r['gain_per_decade_upper']:.3f} per decade is still possible ({r['n_points']} checkpoints over "
        f"{r['flops_decades']:.2f} decades of FLOPs, n={int(r['n_eff_min'])})"
    )


def _reason(group: str, rows: list[dict], tested: list[dict], strict: bool, latent_note: str) -> str:
    if not tested:
        return f"fewer than 3 checkpoints at every shot count (max {max(r['n_points'] for r in rows)})"
    if group == NOISE:
        best = min(tested, key=lambda r: (r["above_chance_q"], -r["best_accuracy"]))
        floor = "majority rate" if best["floor"] > best["random_baseline"] else "random baseline"
        text = (
            f"not above chance at any shot count: best {int(best['num_fewshot'])}-shot "
            f"{best['best_accuracy']:.3f} ({best['best_checkpoint']}) vs {floor} {best['floor']:.3f} + margin = "
            f"{best['null_rate']:.3f} (n={int(best['n_eff_min'])}, adjusted p={best['above_chance_q']:.3g})"
        )
        return text + (f"; latent trend: {latent_note}" if latent_note else "")
    mono = [r for r in tested if r["monotone"]]
    parts = [f"monotone at {_shots_phrase(mono)} (of {_shots_phrase(tested)})"]
    parts += [
        f"{int(r['num_fewshot'])}-shot: {_why_not_monotone(r, strict)}" for r in tested if not r["monotone"]
    ]
    return "; ".join(parts)


def classify(
    per_shot: pd.DataFrame,
    categories: dict[str, str],
    standard_shots: Callable[[str], int | None],
    *,
    strict: bool,
    alpha: float,
    latent_metrics: list[str],
    confidence: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per benchmark: group, confidence, recommended shots, reason and key statistics.

    ``per_shot`` must be sorted by (benchmark, num_fewshot); ``confidence`` is the bootstrap's
    share of redraws with the same group, per benchmark in that order (None: not computed).
    """
    tested_mask = per_shot["n_points"].to_numpy() >= 3
    starts = benchmark_starts(per_shot)
    codes = group_codes(
        tested_mask,
        per_shot["above_chance"].to_numpy()[None, :],
        per_shot["monotone"].to_numpy()[None, :],
        per_shot["evidence_against"].to_numpy()[None, :],
        starts,
    )[0]
    bounds = [*starts[1:], len(per_shot)]
    records = per_shot.to_dict("records")
    out = []
    for b, (lo, hi) in enumerate(zip(starts, bounds, strict=True)):
        rows = records[lo:hi]
        name = str(rows[0]["benchmark"])
        group = GROUPS[codes[b]]
        tested = [r for r in rows if r["n_points"] >= 3]
        above = [r for r in tested if r["above_chance"]]
        mono = [r for r in tested if r["monotone"]]
        flag, latent_note = (
            latent.latent_trend(tested, latent_metrics, alpha) if group == NOISE else (False, "")
        )
        standard = standard_shots(name)
        # A monotone setting still at chance is no use as a default; prefer those above chance.
        usable = [r for r in mono if r["above_chance"]] or mono
        recommended = recommend_shots(usable, standard) if group in RECOMMENDING_GROUPS else None
        conf = float("nan") if confidence is None else float(confidence[b])
        out.append(
            {
                "benchmark": name,
                "category": categories.get(name, "") or "uncategorized",
                "group": group,
                "latent_trend": flag,
                "confidence": conf,
                "borderline": bool(conf < BORDERLINE_BELOW),
                "recommended_shots": recommended,
                "standard_shots": standard,
                "reason": _reason(group, rows, tested, strict, latent_note),
                "shots_evaluated": _fmt_shots(rows),
                "shots_above_chance": _fmt_shots(above),
                "shots_monotone": _fmt_shots(mono),
                "shots_not_monotone": _fmt_shots([r for r in tested if r["trend"] == "not_monotone"]),
                "shots_undetermined": _fmt_shots([r for r in tested if r["trend"] == "undetermined"]),
                "n_checkpoints": max(int(r["n_points"]) for r in rows),
                "random_baseline": float(rows[0]["random_baseline"]),
                "floor": float(rows[0]["floor"]),
                "max_accuracy": max(float(r["accuracy_max"]) for r in rows),
                "best_spearman": _nanmax([r["spearman"] for r in tested]),
                "min_above_chance_q": min((r["above_chance_q"] for r in tested), default=float("nan")),
                "mean_snr": _nanmean([r["snr"] for r in tested]),
                "mean_decision_accuracy": _nanmean([r["decision_accuracy"] for r in tested]),
            }
        )
    frame = pd.DataFrame.from_records(out)
    frame["recommended_shots"] = frame["recommended_shots"].astype("Int64")
    frame["standard_shots"] = frame["standard_shots"].astype("Int64")
    return frame
