"""The overview figure: every benchmark at a glance, one small panel each, grouped by verdict.

Like the calibration study's figures: accuracy against training FLOPs (log x), one line per shot
count, the random baseline dotted; panels of one verdict share a row block and its colour
(``inconclusive`` too). A panel's title carries the verdict's confidence and its flags.
``overview_layout`` (which panel goes where) is plain data; ``overview_figure`` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the reducer runs in a Job
import matplotlib.pyplot as plt
import pandas as pd

from benchcal.classification import GROUPS
from benchcal_reduce.labels import confidence_label
from benchcal_reduce.palette import group_colour
from benchcal_reduce.reduce import Reduction

PANEL_INCHES = (2.3, 1.75)
_MARKERS = "osD^v<>px*"


@dataclass(frozen=True)
class Block:
    """The panels of one verdict: its benchmarks (category, then name) in rows of ``columns``."""

    group: str
    rows: tuple[tuple[str, ...], ...]


def overview_layout(classification: pd.DataFrame, columns: int = 6) -> list[Block]:
    """Verdict blocks in GROUPS order (unknown groups after them), each starting on a new row."""
    known = [g for g in GROUPS if g in set(classification["group"])]
    extra = sorted(set(classification["group"]) - set(GROUPS))
    blocks = []
    for group in known + extra:
        members = classification[classification["group"] == group].sort_values(["category", "benchmark"])
        names = [str(b) for b in members["benchmark"]]
        rows = tuple(tuple(names[i : i + columns]) for i in range(0, len(names), columns))
        blocks.append(Block(group, rows))
    return blocks


MIN_Y_SPAN = 0.1  # a flat series at chance must not be blown up into a zig-zag


def _columns(classification: pd.DataFrame) -> int:
    """Up to 6 panels a row, fewer when no verdict has that many (each verdict starts a row)."""
    return max(1, min(6, int(classification["group"].value_counts().max())))


def _shot_style(shot: int, all_shots: list[int]) -> dict:
    """One marker and shade per shot count, the same in every panel (darker = more shots)."""
    i = all_shots.index(shot)
    return {"marker": _MARKERS[i % len(_MARKERS)], "alpha": 0.35 + 0.65 * (i + 1) / len(all_shots)}


def _panel(
    ax, reduction: Reduction, benchmark: str, row: pd.Series, colour: str, all_shots: list[int]
) -> None:
    data = reduction.table[reduction.table["benchmark"] == benchmark]
    per_shot = reduction.per_shot[reduction.per_shot["benchmark"] == benchmark].set_index("num_fewshot")
    for shot in sorted(int(s) for s in data["num_fewshot"].unique()):
        pts = data[data["num_fewshot"] == shot].groupby("flops")["accuracy"].mean()
        mono = bool(per_shot.at[shot, "monotone"]) if shot in per_shot.index else False
        ax.plot(pts.index, pts.values, markersize=2.5, linewidth=1, color=colour,
                linestyle="-" if mono else "--", **_shot_style(shot, all_shots))  # fmt: skip
    ax.axhline(float(row["random_baseline"]), color="black", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    lo, hi = ax.get_ylim()
    if hi - lo < MIN_Y_SPAN:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_Y_SPAN / 2, mid + MIN_Y_SPAN / 2
    if lo < -0.005:  # accuracy is never negative: shift the window up, keeping its span
        lo, hi = -0.005, hi + (-0.005 - lo)
    ax.set_ylim(lo, hi)
    ax.set_title(panel_title(benchmark, row.to_dict()), fontsize=7, color=colour)
    ax.tick_params(labelsize=5, length=2)
    for spine in ax.spines.values():
        spine.set_color(colour)
        spine.set_linewidth(1.2)
    ax.set_facecolor(matplotlib.colors.to_rgba(colour, 0.06))


def panel_title(benchmark: str, row: dict) -> str:
    """ "arc_easy (0-shot)" over "conf. 0.97"; "conf. 0.61 borderline", ", latent trend" when flagged."""
    rec = row["recommended_shots"]
    flags = [f"conf. {confidence_label(row)}"]
    if row.get("latent_trend"):
        flags.append("latent trend")
    return benchmark + ("" if pd.isna(rec) else f" ({int(rec)}-shot)") + "\n" + ", ".join(flags)


def _legend(fig, all_shots: list[int]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="#333333", markersize=4, **_shot_style(s, all_shots)) for s in all_shots]
    labels = [f"{s}-shot" for s in all_shots]
    handles += [Line2D([], [], color="#333333", linestyle="--"), Line2D([], [], color="black", linestyle=":")]
    labels += ["not monotone", "random baseline"]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.975), ncol=len(labels),
               fontsize=7, frameon=False)  # fmt: skip


def overview_figure(reduction: Reduction, path: str | Path, columns: int | None = None) -> Path:
    """Write the overview PNG; returns its path."""
    cls = reduction.classification
    columns = columns or _columns(cls)
    blocks = overview_layout(cls, columns)
    n_rows = sum(len(b.rows) for b in blocks)
    fig, axes = plt.subplots(
        n_rows, columns, figsize=(PANEL_INCHES[0] * columns + 1.2, PANEL_INCHES[1] * n_rows + 1.1),
        squeeze=False,
    )  # fmt: skip
    by_name = cls.set_index("benchmark")
    all_shots = sorted(int(s) for s in reduction.table["num_fewshot"].unique())
    r = 0
    for block in blocks:
        colour = group_colour(block.group)
        for k, names in enumerate(block.rows):
            for c in range(columns):
                ax = axes[r][c]
                if c >= len(names):
                    ax.set_axis_off()
                    continue
                _panel(ax, reduction, names[c], by_name.loc[names[c]], colour, all_shots)
            if k == 0:
                count = sum(len(x) for x in block.rows)
                axes[r][0].annotate(
                    f"{block.group} ({count})", xy=(0, 0.5), xycoords="axes fraction", xytext=(-28, 0),
                    textcoords="offset points", rotation=90, ha="right", va="center", fontsize=9,
                    fontweight="bold", color=colour,
                )  # fmt: skip
            r += 1
    fig.supxlabel("training FLOPs (log scale)", fontsize=8)
    fig.suptitle(f"Accuracy against training FLOPs: {len(cls)} benchmarks by verdict", fontsize=10, y=0.995)
    _legend(fig, all_shots)
    fig.tight_layout(rect=(0.03, 0.02, 1, 0.955))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
