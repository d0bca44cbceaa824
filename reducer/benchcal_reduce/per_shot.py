"""Per (benchmark, shot count): above chance, monotone in training FLOPs, signal and noise.

Input is the validated long table; output is one row per (benchmark, num_fewshot) with the
decisions and the statistics behind them (``per_shot.csv``). Series are batched by their
number of checkpoints, so every test is a handful of numpy calls per length; the same
``series_decisions`` runs on the observed series and on the bootstrap's redraws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchcal.classification import MIN_CHECKPOINTS
from benchcal.results import CONTINUOUS_METRICS
from benchcal_reduce import chance, latent, monotone, signal_noise, stats

SERIES_KEY = ["benchmark", "num_fewshot"]
_METRIC_COLS = [c for m in CONTINUOUS_METRICS for c in (m, f"{m}_stderr")]


@dataclass(frozen=True)
class Settings:
    alpha: float
    strict: bool
    min_margin: float  # rescaled accuracy above the floor that counts as "above chance"
    min_gain: float  # rescaled accuracy per decade of FLOPs below which a series is "flat"


@dataclass
class Batch:
    """Every testable series with k points, FLOPs ascending: rows index into per_shot."""

    rows: np.ndarray
    y: np.ndarray  # accuracy (series, k)
    n: np.ndarray  # effective n (series, k)
    x: np.ndarray  # log10 FLOPs (series, k)
    floor: np.ndarray  # (series,)

    @property
    def k(self) -> int:
        return self.y.shape[1]


def pool_equal_flops(df: pd.DataFrame) -> pd.DataFrame:
    """One point per (benchmark, shots, FLOPs): checkpoints with equal FLOPs (e.g. two seeds)
    are pooled as one bigger sample (correct answers, n and effective n summed; continuous
    metrics n-weighted), not treated as a tie."""
    key = [*SERIES_KEY, "flops"]
    work = df[[*key, "checkpoint", "run", "accuracy", "n", "random_baseline", "majority_rate", *_METRIC_COLS]]
    work = work.assign(n_eff=chance.effective_n(df["accuracy"], df["n"], df["stderr"]))
    shared = work.duplicated(key, keep=False).to_numpy()
    if not shared.any():  # the common case: nothing to pool, no per-group Python
        out = work.copy()
    else:
        grouped = (
            work[shared]
            .assign(
                **{c: work.loc[shared, c] * work.loc[shared, "n"] for c in ["accuracy", *CONTINUOUS_METRICS]},
                **{
                    f"{m}_stderr": (work.loc[shared, f"{m}_stderr"] * work.loc[shared, "n"]) ** 2
                    for m in CONTINUOUS_METRICS
                },
            )
            .groupby(key, sort=False)
        )
        sums = grouped[["accuracy", "n", "n_eff", *_METRIC_COLS]].sum(min_count=1)
        # a continuous metric missing on one pooled checkpoint makes the pooled value missing
        complete = grouped[_METRIC_COLS].count().eq(grouped.size(), axis=0)
        sums[_METRIC_COLS] = sums[_METRIC_COLS].where(complete)
        pooled = sums.assign(
            **{c: sums[c] / sums["n"] for c in ["accuracy", *CONTINUOUS_METRICS]},
            **{f"{m}_stderr": np.sqrt(sums[f"{m}_stderr"]) / sums["n"] for m in CONTINUOUS_METRICS},
            random_baseline=grouped["random_baseline"].first(),
            majority_rate=grouped["majority_rate"].first(),
            checkpoint=grouped["checkpoint"].agg(lambda s: "+".join(sorted(s))),
            run=grouped["run"].agg(lambda s: s.iat[0] if s.nunique() == 1 else ""),
        ).reset_index()
        out = pd.concat([work[~shared], pooled], ignore_index=True)
    out["log_flops"] = np.log10(out["flops"])
    return out


_FLOAT_COLS = [
    "flops_min", "flops_max", "flops_decades", "accuracy_first", "accuracy_last", "accuracy_max",
    "random_baseline", "majority_rate", "floor", "null_rate", "best_accuracy", "n_last", "n_eff_min",
    "above_chance_p", "spearman", "spearman_lo", "spearman_hi", "kendall", "kendall_lo", "kendall_hi",
    "rise_stat", "rise_p", "max_drop", "drop_z", "drop_p", "gain_per_decade", "gain_per_decade_upper",
    "signal", "noise", "snr", "decision_accuracy",
]  # fmt: skip
_BOOL_COLS = ["rising", "significant_drop", "flat", "strict_increasing", "monotone", "evidence_against"]


def _empty(size: int, metrics: list[str]) -> dict[str, np.ndarray]:
    """Column arrays of per_shot, filled for untested series; one DataFrame is built at the end."""
    cols: dict[str, np.ndarray] = {"n_points": np.zeros(size, dtype=int)}
    cols.update({c: np.full(size, np.nan) for c in _FLOAT_COLS})
    cols.update({c: np.zeros(size, dtype=bool) for c in _BOOL_COLS})
    for m in metrics:
        cols[f"{m}_rise_p"] = np.full(size, np.nan)
        cols[f"{m}_drop_p"] = np.full(size, np.nan)
        cols[f"{m}_improves"] = np.zeros(size, dtype=bool)
    cols["best_checkpoint"] = np.full(size, "", dtype=object)
    cols["noise_source"] = np.full(size, "", dtype=object)
    return cols


def series_decisions(
    batch: Batch, y: np.ndarray, s: Settings, *, details: bool = False
) -> dict[str, np.ndarray]:
    """Above-chance p-value and the monotone / evidence-against decisions of each row of y
    (the batch's accuracies, or redraws of them: y may have more rows, tiling the batch).

    Decisions compare statistics with cached critical values, so the observed verdict and the
    bootstrap's use exactly the same rule; ``details`` adds the p-values and fits for reports.
    """
    reps = y.shape[0] // batch.y.shape[0]
    n, x, floor = (
        np.tile(a, (reps, 1)) if a.ndim == 2 else np.tile(a, reps) for a in (batch.n, batch.x, batch.floor)
    )
    k = batch.k
    p_above, best = chance.above_chance_test(y, n, chance.null_rate(floor, s.min_margin))
    strict_inc = (np.diff(y, axis=1) > 0).all(axis=1)
    rise, _ = monotone.binomial_rise_statistic(y, n)
    drop_z, max_drop = monotone.binomial_max_drop(y, n)
    slope, upper = monotone.slope_bound(y, n, x, s.alpha)
    scale = np.maximum(1.0 - floor, 1e-9)  # floor 1 (majority rate 1.0): never above chance anyway
    rising = rise >= monotone.rise_critical(k, s.alpha)
    drop = drop_z >= monotone.drop_critical(k, s.alpha)
    flat = upper / scale < s.min_gain
    if s.strict:  # the study's literal rule: every step up, nothing else
        mono, against = strict_inc, ~strict_inc
    else:
        mono, against = rising & ~drop, drop | (~rising & flat)
    out = {"above_chance_p": p_above, "monotone": mono, "evidence_against": against}
    if details:
        out.update(
            best=best, strict_increasing=strict_inc, rise_stat=rise, rise_p=monotone.chibar_rise_sf(rise, k),
            rising=rising, drop_z=drop_z, drop_p=monotone.drop_sf(drop_z, k), max_drop=max_drop,
            significant_drop=drop, gain_per_decade=slope / scale, gain_per_decade_upper=upper / scale, flat=flat,
        )  # fmt: skip
    return out


def series_statistics(points: pd.DataFrame, s: Settings) -> tuple[pd.DataFrame, list[Batch], list[str]]:
    """Every statistic and per-series decision (above-chance q-values come later, ``decide``);
    the batches for the bootstrap; notes on optional features not applied."""
    metrics, notes = latent.usable_metrics(points)
    points = points.sort_values([*SERIES_KEY, "flops"], kind="mergesort").reset_index(drop=True)
    sizes = points.groupby(SERIES_KEY, sort=True).size()
    keys = sizes.index.to_frame(index=False)
    out = _empty(len(keys), metrics)
    starts = np.concatenate([[0], np.cumsum(sizes.to_numpy())[:-1]])
    lengths = sizes.to_numpy()
    col = {c: points[c].to_numpy() for c in points.columns}
    base = col["random_baseline"].astype(float)
    floor_all = chance.floor_rate(base, col["majority_rate"].astype(float))
    batches = []
    for k in np.unique(lengths):
        o = np.flatnonzero(lengths == k)
        idx = starts[o, None] + np.arange(k)  # (series, k) gather index, FLOPs ascending
        y, n, x = col["accuracy"][idx].astype(float), col["n_eff"][idx].astype(float), col["log_flops"][idx]
        last = idx[:, -1]
        floor = floor_all[last]
        values: dict[str, np.ndarray] = {
            "n_points": np.full(len(o), k),
            "flops_min": col["flops"][idx[:, 0]],
            "flops_max": col["flops"][last],
            "flops_decades": x[:, -1] - x[:, 0],
            "accuracy_first": y[:, 0],
            "accuracy_last": y[:, -1],
            "accuracy_max": y.max(axis=1),
            "random_baseline": base[last],
            "majority_rate": col["majority_rate"][last],
            "floor": floor,
            "null_rate": chance.null_rate(floor, s.min_margin),
            "n_last": col["n"][last],
            "n_eff_min": n.min(axis=1),
        }
        if k >= MIN_CHECKPOINTS:
            batch = Batch(o, y, n, x, floor)
            batches.append(batch)
            d = series_decisions(batch, y, s, details=True)
            best = idx[np.arange(len(o)), d.pop("best")]
            values.update(d, best_checkpoint=col["checkpoint"][best], best_accuracy=col["accuracy"][best])
            rho = stats.spearman_rows(y)
            tau, _ = stats.kendall_rows(y)
            values["spearman_lo"], values["spearman_hi"] = stats.fisher_ci(rho, int(k), "spearman")
            values["kendall_lo"], values["kendall_hi"] = stats.fisher_ci(tau, int(k), "kendall")
            values.update(spearman=rho, kendall=tau, **signal_noise.signal_and_noise(y, n, col["run"][idx]))
            for m in metrics:
                vals, se, ok = latent.metric_series(
                    col[m][idx].astype(float),
                    col[f"{m}_stderr"][idx].astype(float),
                    col["n"][idx].astype(float),
                    m,
                )
                if ok.any():
                    for name, res in latent.improves(vals[ok], se[ok], s.alpha).items():
                        out[f"{m}_{name}"][o[ok]] = res
        for name, v in values.items():
            out[name][o] = v
    frame = pd.concat([keys, pd.DataFrame(out)], axis=1)
    frame["trend"] = np.select(
        [frame["n_points"] < MIN_CHECKPOINTS, frame["monotone"], frame["evidence_against"]],
        ["untested", "monotone", "not_monotone"],
        "undetermined",
    )
    frame["n_last"] = frame["n_last"].astype(int)
    return frame, batches, notes


def decide(per_shot: pd.DataFrame, *, alpha: float, correction: str) -> pd.DataFrame:
    """Above chance, corrected over the whole table (every benchmark x shots is one family)."""
    out = per_shot.copy()
    testable = out["n_points"].to_numpy() >= MIN_CHECKPOINTS
    p = np.where(testable, out["above_chance_p"].to_numpy(dtype=float), np.nan)
    out["above_chance_q"] = stats.adjust_pvalues(p, correction)
    out["above_chance"] = testable & (out["above_chance_q"].to_numpy() <= alpha)
    return out
