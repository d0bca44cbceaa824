"""PNG figures (matplotlib Agg): accuracy against training FLOPs per benchmark, and the composite."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the reducer runs in a Job
import matplotlib.pyplot as plt
import pandas as pd

from benchcal_reduce.labels import group_label
from benchcal_reduce.palette import GROUP_COLOURS
from benchcal_reduce.reduce import Reduction

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_name(name: str) -> str:
    return _SAFE.sub("_", name) + ".png"


def figure_title(benchmark: str, row: dict) -> str:
    """ "arc_easy: robust (use 0-shot), confidence 0.97"; borderline verdicts say so."""
    rec = row["recommended_shots"]
    title = f"{benchmark}: {group_label(row)}" + ("" if pd.isna(rec) else f" (use {rec}-shot)")
    conf = row.get("confidence")
    if conf is not None and not pd.isna(conf):
        title += f", confidence {conf:.2f}" + (" (borderline)" if row.get("borderline") else "")
    return title


def benchmark_figure(reduction: Reduction, benchmark: str, path: Path) -> Path:
    """Accuracy vs FLOPs (log x), one line per shot count, random baseline dotted, coloured by group."""
    row = reduction.classification.set_index("benchmark").loc[benchmark]
    colour = GROUP_COLOURS.get(row["group"], "black")
    data = reduction.table[reduction.table["benchmark"] == benchmark]
    per_shot = reduction.per_shot[reduction.per_shot["benchmark"] == benchmark].set_index("num_fewshot")
    shots = sorted(data["num_fewshot"].unique())
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    markers = "osD^v<>px*"
    for i, shot in enumerate(shots):
        pts = data[data["num_fewshot"] == shot].groupby("flops")[["accuracy"]].mean().reset_index()
        mono = bool(per_shot.at[shot, "monotone"]) if shot in per_shot.index else False
        ax.plot(
            pts["flops"],
            pts["accuracy"],
            marker=markers[i % len(markers)],
            color=colour,
            alpha=0.35 + 0.65 * (i + 1) / len(shots),
            linestyle="-" if mono else "--",
            label=f"{shot}-shot" + ("" if mono else " (not monotone)"),
        )
    ax.axhline(
        float(row["random_baseline"]), color="black", linestyle=":", linewidth=1, label="random baseline"
    )
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("accuracy")
    ax.set_title(figure_title(benchmark, row.to_dict()), color=colour, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def composite_figure(reduction: Reduction, path: Path) -> Path:
    per = reduction.composite["per_checkpoint"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(
        per["flops"],
        per["composite_before"],
        marker="o",
        color="#878787",
        label="all benchmarks, default shots",
    )
    ax.plot(per["flops"], per["composite_after"], marker="s", color="#1b7837", label="calibrated suite")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("composite (accuracy above chance, rescaled)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_figures(reduction: Reduction, out_dir: str | Path) -> dict[str, Path]:
    """benchmarks/<name>.png per benchmark plus composite.png; returns {name: path}."""
    out = Path(out_dir)
    (out / "benchmarks").mkdir(parents=True, exist_ok=True)
    paths = {"composite": composite_figure(reduction, out / "composite.png")}
    for name in reduction.classification["benchmark"]:
        paths[f"benchmarks/{name}"] = benchmark_figure(reduction, name, out / "benchmarks" / _file_name(name))
    return paths
