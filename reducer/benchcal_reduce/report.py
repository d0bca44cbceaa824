"""Write a Reduction out: classification.csv, per_shot.csv, composite.csv, summary.json,
report.md (+ figures), and the bounded status summary for the CalibrationRun CR. Given the run's
verdict history (``benchcal.history``, this reduction's entry last), the reports show the verdicts
per generation (``history_report``)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchcal.classification import (
    GROUPS,
    INCONCLUSIVE,
    MAX_BENCHMARKS,
    NOISE,
    POORLY_BEHAVED,
    BenchmarkVerdict,
    StatusClassification,
)
from benchcal.history import HistoryEntry
from benchcal.results import atomic_write_text
from benchcal_reduce.classify import BORDERLINE_BELOW
from benchcal_reduce.history_report import history_markdown, history_summary
from benchcal_reduce.html_report import report_html
from benchcal_reduce.labels import confidence_label, group_label
from benchcal_reduce.reduce import Reduction

SCHEMA_VERSION = "benchcal.reduction/v1"

PER_SHOT_COLUMNS = [
    "benchmark",
    "num_fewshot",
    "n_points",
    "flops_min",
    "flops_max",
    "flops_decades",
    "accuracy_first",
    "accuracy_last",
    "accuracy_max",
    "random_baseline",
    "majority_rate",
    "floor",
    "null_rate",
    "n_last",
    "n_eff_min",
    "best_checkpoint",
    "best_accuracy",
    "above_chance_p",
    "above_chance_q",
    "above_chance",
    "spearman",
    "spearman_lo",
    "spearman_hi",
    "kendall",
    "kendall_lo",
    "kendall_hi",
    "rise_stat",
    "rise_p",
    "rising",
    "max_drop",
    "drop_z",
    "drop_p",
    "significant_drop",
    "gain_per_decade",
    "gain_per_decade_upper",
    "flat",
    "strict_increasing",
    "monotone",
    "evidence_against",
    "trend",
    "signal",
    "noise",
    "noise_source",
    "snr",
    "decision_accuracy",
]


def per_shot_columns(reduction: Reduction) -> list[str]:
    """The fixed columns plus the latent-trend columns of the continuous metrics the table has."""
    return PER_SHOT_COLUMNS + [
        f"{m}_{s}" for m in reduction.latent_metrics for s in ("rise_p", "drop_p", "improves")
    ]


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN/NA -> None, numpy -> Python."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def calibrated_suite(reduction: Reduction) -> dict[str, Any]:
    """Benchmarks kept after calibration with their shot counts; noise kept but flagged."""
    after = reduction.composite["after"]["benchmarks"]
    cls = reduction.classification.set_index("benchmark")
    return {
        "benchmarks": dict(sorted(after.items())),
        "flaggedNoise": sorted(b for b in after if cls.at[b, "group"] == NOISE),
        "latentTrend": sorted(cls.index[cls["latent_trend"]]),
        "removed": sorted(cls.index[cls["group"] == POORLY_BEHAVED]),
        "undecided": sorted(cls.index[cls["group"] == INCONCLUSIVE]),
    }


def summary_dict(reduction: Reduction, history: Sequence[HistoryEntry] = ()) -> dict[str, Any]:
    cls = reduction.classification
    comp = reduction.composite
    opts = reduction.options
    return {
        "schema_version": SCHEMA_VERSION,
        "options": {
            "alpha": opts.alpha,
            "strict": opts.strict,
            "correction": opts.correction,
            "min_margin": opts.min_margin,
            "min_gain": opts.min_gain,
            "bootstrap": opts.bootstrap,
            "seed": opts.seed,
        },
        "checkpoints": [
            {"checkpoint": r.checkpoint, "flops": float(r.flops)} for r in reduction.checkpoints.itertuples()
        ],
        "counts": {g: int((cls["group"] == g).sum()) for g in GROUPS},
        "benchmarks": {
            r["benchmark"]: {k: _clean(v) for k, v in r.items() if k != "benchmark"}
            for r in cls.to_dict("records")
        },
        "calibrated_suite": calibrated_suite(reduction),
        "composite": {
            "before": {
                k: _clean(v) if not isinstance(v, (dict, list)) else v for k, v in comp["before"].items()
            },
            "after": {
                k: _clean(v) if not isinstance(v, (dict, list)) else v for k, v in comp["after"].items()
            },
            "per_checkpoint": [
                {k: _clean(v) for k, v in r.items()} for r in comp["per_checkpoint"].to_dict("records")
            ],
        },
        "incomplete": reduction.incomplete,
        "warnings": reduction.warnings,
        "notes": reduction.notes,
        "history": history_summary(history),
    }


def _verdict(row: Any) -> BenchmarkVerdict:
    """One benchmark for the status; ``confidence`` (rounded to 0.01) is left out when the
    bootstrap did not run."""
    numbers = {"spearman": _clean(row.best_spearman), "maxAccuracy": _clean(row.max_accuracy)}
    shots = _clean(row.recommended_shots)
    confidence = _clean(row.confidence)
    return BenchmarkVerdict(
        name=str(row.benchmark),
        group=str(row.group),
        recommended_shots=None if shots is None else int(shots),
        numbers={k: round(float(v), 4) for k, v in numbers.items() if v is not None},
        confidence=None if confidence is None else round(float(confidence), 2),
        borderline=bool(row.borderline),
        latent_trend=bool(row.latent_trend),
    )


def status_summary(reduction: Reduction, max_benchmarks: int = MAX_BENCHMARKS) -> StatusClassification:
    """The bounded classification for the CalibrationRun status (etcd objects must stay small):
    counts over every benchmark, verdicts of the first ``max_benchmarks`` by name."""
    comp = reduction.composite
    return StatusClassification.from_verdicts(
        (_verdict(r) for r in reduction.classification.itertuples(index=False)),
        composite_before=_clean(comp["before"]["monotone"]),
        composite_after=_clean(comp["after"]["monotone"]),
        max_benchmarks=max_benchmarks,
    )


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            v = _clean(v)
            cells.append(
                "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "/")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(
    reduction: Reduction,
    figures: dict[str, Path] | None = None,
    summary: dict[str, Any] | None = None,
    history: Sequence[HistoryEntry] = (),
) -> str:
    """The human-readable report; ``figures`` maps names to paths relative to the report;
    ``summary`` is ``summary_dict(reduction)`` when the caller has it already."""
    s = summary or summary_dict(reduction)
    cls = reduction.classification
    opts = reduction.options
    confidence = (
        f"confidence = share of {opts.bootstrap} seeded redraws of every point's correct count "
        f"(seed {opts.seed}) that give the same group; **borderline** below {BORDERLINE_BELOW:.0%}"
        if opts.bootstrap
        else "confidence not computed (--bootstrap 0)"
    )
    out = [
        "# benchcal calibration report",
        "",
        f"{len(s['checkpoints'])} checkpoints, {len(cls)} benchmarks; alpha={opts.alpha}, "
        f"{'strict (every step up)' if opts.strict else 'noise-tolerant'} monotonicity, "
        f"{'Benjamini–Hochberg' if opts.correction == 'bh' else 'Holm'} correction of the above-chance tests; "
        f"above chance = beyond the floor by {opts.min_margin:g} (rescaled), flat = rising less than "
        f"{opts.min_gain:g} (rescaled) per decade of FLOPs; {confidence}.",
        "",
        *(
            [f"![overview: every benchmark by verdict]({figures['overview'].as_posix()})", ""]
            if figures and "overview" in figures
            else []
        ),
        "The same report as one page with a sortable verdict table: [index.html](index.html).",
        "",
        "| group | benchmarks |",
        "|---|---|",
        *[f"| {g} | {s['counts'][g]} |" for g in GROUPS if s["counts"][g]],
        "",
    ]
    shown = cls.assign(
        group=[group_label(r) for r in cls.to_dict("records")],
        confidence=[confidence_label(r) for r in cls.to_dict("records")],
    )
    for group in GROUPS:
        rows = shown[cls["group"] == group]
        if rows.empty:
            continue
        out += [
            f"## {group}",
            "",
            _md_table(
                rows[
                    [
                        "benchmark",
                        "category",
                        "group",
                        "confidence",
                        "recommended_shots",
                        "shots_monotone",
                        "shots_above_chance",
                        "best_spearman",
                        "max_accuracy",
                        "reason",
                    ]
                ]
            ),
            "",
        ]
    out += history_markdown(history)
    ps = reduction.per_shot
    tested = ps[ps["n_points"] >= 3]
    out += [
        "## Signal and noise",
        "",
        "Per benchmark and shot count (Heineman et al., *Signal and Noise*, AI2 2025): signal = "
        "(max - min) / mean over the checkpoints; noise = relative std of the last checkpoints of one run "
        "(`checkpoints`), or, where the table names no run, the relative item standard error "
        "(`item_se_lower_bound`: a lower bound, it leaves out seed and checkpoint-to-checkpoint noise); "
        "SNR = signal / noise; decision accuracy = share of adjacent checkpoints ordered as FLOPs (ties 1/2).",
        "",
        _md_table(
            tested[
                [
                    "benchmark",
                    "num_fewshot",
                    "signal",
                    "noise",
                    "noise_source",
                    "snr",
                    "decision_accuracy",
                    "trend",
                ]
            ]
        ),
        "",
    ]
    comp = reduction.composite
    out += [
        "## Gauntlet composite",
        "",
        f"Before calibration ({len(comp['before']['benchmarks'])} benchmarks at default shots): "
        f"monotone in FLOPs: **{comp['before']['monotone']}**. After calibration "
        f"({len(comp['after']['benchmarks'])} benchmarks at recommended shots, noise flagged: "
        f"{', '.join(s['calibrated_suite']['flaggedNoise']) or 'none'}): monotone: **{comp['after']['monotone']}**.",
        "",
        _md_table(comp["per_checkpoint"]),
        "",
    ]
    if reduction.incomplete or reduction.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in reduction.warnings], ""]
    if reduction.notes:
        out += ["## Not applied", "", *[f"- {n}" for n in reduction.notes], ""]
    if figures:
        # the overview first: every benchmark at a glance, then the composite and the details
        order = sorted(figures, key=lambda name: (name != "overview", name != "composite", name))
        out += ["## Figures", "", *[f"![{name}]({figures[name].as_posix()})" for name in order], ""]
    return "\n".join(out)


def write_outputs(
    reduction: Reduction,
    out_dir: str | Path,
    figures: bool = True,
    history: Sequence[HistoryEntry] = (),
) -> dict[str, Path]:
    """Write every output file into out_dir; returns {name: path}. ``history``: the run's verdict
    history including this reduction's entry (none: the reports have no per-generation table)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    fig_paths: dict[str, Path] = {}
    if figures:
        from benchcal_reduce.figures import write_figures  # matplotlib only when asked
        from benchcal_reduce.overview import overview_figure

        fig_paths = {"overview": overview_figure(reduction, out / "figures" / "overview.png")}
        fig_paths.update(write_figures(reduction, out / "figures"))
        paths.update({f"figure:{k}": v for k, v in fig_paths.items()})
    summary = summary_dict(reduction, history)
    figures_rel = {k: p.relative_to(out) for k, p in fig_paths.items()}
    files = {
        "classification.csv": reduction.classification.to_csv(index=False),
        "per_shot.csv": reduction.per_shot[per_shot_columns(reduction)].to_csv(index=False),
        "composite.csv": reduction.composite["per_checkpoint"].to_csv(index=False),
        "summary.json": json.dumps(summary, indent=2, sort_keys=True) + "\n",
        "report.md": report_markdown(reduction, figures_rel, summary, history) + "\n",
        "index.html": report_html(reduction, fig_paths, history),
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
        paths[name] = out / name
    return paths


def results_ref(path: str | Path) -> dict[str, Any]:
    """{uri, sha256, size} of a written file (report.md), for the CR status."""
    p = Path(path).resolve()
    data = p.read_bytes()
    return {"uri": p.as_uri(), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
