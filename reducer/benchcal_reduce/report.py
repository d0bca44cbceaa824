"""Write a Reduction out: classification.csv, per_shot.csv, composite.csv, summary.json,
report.md (+ figures), and the bounded status summary for the CalibrationRun CR."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchcal.results import atomic_write_text
from benchcal_reduce.classify import GROUPS
from benchcal_reduce.composite import CALIBRATED_GROUPS
from benchcal_reduce.html_report import report_html
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
        "flaggedNoise": sorted(b for b in after if cls.at[b, "group"] == "noise"),
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


def status_summary(reduction: Reduction, max_benchmarks: int = 64) -> dict[str, Any]:
    """Bounded summary for the CalibrationRun status (etcd objects must stay small).

    Field names are camelCase like the rest of the CR; group names (count keys and values) are
    the CRD's own ``robust``/``shot_dependent``/``poorly_behaved``/``noise``.
    """
    cls = reduction.classification.sort_values("benchmark")
    shown = cls.head(max_benchmarks)
    comp = reduction.composite
    return {
        "counts": {g: int((cls["group"] == g).sum()) for g in GROUPS},
        "benchmarks": {
            r.benchmark: {
                "group": r.group,
                "recommendedShots": _clean(r.recommended_shots),
                "spearman": None if _clean(r.best_spearman) is None else round(float(r.best_spearman), 4),
                "maxAccuracy": round(float(r.max_accuracy), 4),
            }
            for r in shown.itertuples(index=False)
        },
        "totalBenchmarks": len(cls),
        "truncated": len(cls) > len(shown),
        "compositeMonotone": {"before": comp["before"]["monotone"], "after": comp["after"]["monotone"]},
        "checkpoints": int(reduction.table["checkpoint"].nunique()),
    }


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
        # the overview first: every benchmark at a glance, then the composite and the details
        order = sorted(figures, key=lambda name: (name != "overview", name != "composite", name))
        out += ["## Figures", "", *[f"![{name}]({figures[name].as_posix()})" for name in order], ""]
    return "\n".join(out)


def write_outputs(reduction: Reduction, out_dir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write every output file into out_dir; returns {name: path}."""
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
    files = {
        "classification.csv": reduction.classification.to_csv(index=False),
        "per_shot.csv": reduction.per_shot[PER_SHOT_COLUMNS].to_csv(index=False),
        "composite.csv": reduction.composite["per_checkpoint"].to_csv(index=False),
        "summary.json": json.dumps(summary_dict(reduction), indent=2, sort_keys=True) + "\n",
        "report.md": report_markdown(reduction, {k: p.relative_to(out) for k, p in fig_paths.items()}) + "\n",
        "index.html": report_html(reduction, fig_paths),
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
