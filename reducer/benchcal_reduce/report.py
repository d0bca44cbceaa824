"""Write a Reduction out: classification.csv, per_shot.csv, composite.csv, summary.json,
report.md (+ figures), and the bounded status summary for the CalibrationRun CR."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchcal.classification import (
    CALIBRATED_GROUPS,
    GROUPS,
    MAX_BENCHMARKS,
    NOISE,
    BenchmarkVerdict,
    StatusClassification,
)
from benchcal.results import atomic_write_text
from benchcal_reduce.reduce import Reduction

SCHEMA_VERSION = "benchcal.reduction/v1"

PER_SHOT_COLUMNS = [
    "benchmark",
    "num_fewshot",
    "n_points",
    "flops_max",
    "accuracy_first",
    "accuracy_last",
    "accuracy_max",
    "random_baseline",
    "n_last",
    "above_chance_p",
    "above_chance_q",
    "above_chance",
    "spearman",
    "spearman_lo",
    "spearman_hi",
    "kendall",
    "kendall_lo",
    "kendall_hi",
    "trend_p",
    "rank_test_used",
    "slope",
    "slope_p",
    "rising",
    "max_drop",
    "drop_p",
    "significant_drop",
    "strict_increasing",
    "monotone",
    "snr",
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
        "removed": sorted(cls.index[~cls["group"].isin(CALIBRATED_GROUPS)]),
    }


def summary_dict(reduction: Reduction) -> dict[str, Any]:
    cls = reduction.classification
    comp = reduction.composite
    opts = reduction.options
    return {
        "schema_version": SCHEMA_VERSION,
        "options": {"alpha": opts.alpha, "strict": opts.strict, "correction": opts.correction},
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
    }


def _verdict(row: Any) -> BenchmarkVerdict:
    numbers = {"spearman": _clean(row.best_spearman), "maxAccuracy": _clean(row.max_accuracy)}
    shots = _clean(row.recommended_shots)
    return BenchmarkVerdict(
        name=str(row.benchmark),
        group=str(row.group),
        recommended_shots=None if shots is None else int(shots),
        numbers={k: round(float(v), 4) for k, v in numbers.items() if v is not None},
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


def report_markdown(reduction: Reduction, figures: dict[str, Path] | None = None) -> str:
    """The human-readable report; ``figures`` maps names to paths relative to the report."""
    s = summary_dict(reduction)
    cls = reduction.classification
    opts = reduction.options
    out = [
        "# benchcal calibration report",
        "",
        f"{len(s['checkpoints'])} checkpoints, {len(cls)} benchmarks; alpha={opts.alpha}, "
        f"{'strict (every step up)' if opts.strict else 'noise-tolerant'} monotonicity, "
        f"{'Benjamini–Hochberg' if opts.correction == 'bh' else 'Holm'} correction of the above-chance tests.",
        "",
        "| group | benchmarks |",
        "|---|---|",
        *[f"| {g} | {s['counts'][g]} |" for g in GROUPS if s["counts"][g]],
        "",
    ]
    for group in GROUPS:
        rows = cls[cls["group"] == group]
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
    if figures:
        out += ["## Figures", "", *[f"![{name}]({p.as_posix()})" for name, p in sorted(figures.items())], ""]
    return "\n".join(out)


def write_outputs(reduction: Reduction, out_dir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write every output file into out_dir; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    fig_paths: dict[str, Path] = {}
    if figures:
        from benchcal_reduce.figures import write_figures  # matplotlib only when asked

        fig_paths = write_figures(reduction, out / "figures")
        paths.update({f"figure:{k}": v for k, v in fig_paths.items()})
    files = {
        "classification.csv": reduction.classification.to_csv(index=False),
        "per_shot.csv": reduction.per_shot[PER_SHOT_COLUMNS].to_csv(index=False),
        "composite.csv": reduction.composite["per_checkpoint"].to_csv(index=False),
        "summary.json": json.dumps(summary_dict(reduction), indent=2, sort_keys=True) + "\n",
        "report.md": report_markdown(reduction, {k: p.relative_to(out) for k, p in fig_paths.items()}) + "\n",
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
