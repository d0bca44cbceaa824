"""report/index.html: the report as one self-contained page.

Figures are embedded as data URIs and the sorting script and styles are inline, so the file opens
anywhere (an artifact store, a mail attachment, a pod's volume) with no network. The verdict table
sorts by any column: click its header, or open ``index.html?sort=<column>[&desc=1]``; it shows
each verdict's confidence (bootstrap share, "not computed" with ``--bootstrap 0``) and its
borderline and latent-trend flags, as report.md does. Given the run's verdict history, a second
table (``history_report``) shows the verdicts per generation and what changed.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchcal.classification import GROUPS
from benchcal.history import HistoryEntry
from benchcal_reduce.classify import BORDERLINE_BELOW
from benchcal_reduce.history_report import history_html
from benchcal_reduce.labels import group_label
from benchcal_reduce.palette import group_colour
from benchcal_reduce.reduce import Reduction

TABLE_COLUMNS = (
    "benchmark",
    "category",
    "group",
    "confidence",
    "borderline",
    "latent_trend",
    "recommended_shots",
    "shots_monotone",
    "shots_above_chance",
    "best_spearman",
    "max_accuracy",
    "n_checkpoints",
    "reason",
)


FLAG_COLUMNS = ("borderline", "latent_trend")  # booleans, shown as yes/no
NOT_COMPUTED = "not computed"  # the confidence with --bootstrap 0


def table_columns(classification: pd.DataFrame) -> list[str]:
    """The columns shown, in order (those of TABLE_COLUMNS the classification has)."""
    return [c for c in TABLE_COLUMNS if c in classification.columns]


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or _is_missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def column_type(classification: pd.DataFrame, column: str) -> str:
    """ "number" when every present value is numeric (groups sort by their rank), else "text"."""
    if column in ("group", "confidence"):
        return "number"
    if column in FLAG_COLUMNS:
        return "text"
    values = [v for v in classification[column].tolist() if not _is_missing(v)]
    return "number" if values and all(_number(v) is not None for v in values) else "text"


def _sort_value(column: str, kind: str, value: Any) -> str:
    """What the script sorts on: group rank, the number, or lower-cased text; "" = missing (last)."""
    if column == "group":
        return str(GROUPS.index(value) if value in GROUPS else len(GROUPS))
    if _is_missing(value):
        return ""
    if column in FLAG_COLUMNS:
        return "yes" if value else "no"
    return repr(float(value)) if kind == "number" else str(value).lower()


def _shown(column: str, value: Any, row: dict[str, Any]) -> str:
    if column == "group":
        return group_label(row)  # "noise (latent trend)"
    if column == "confidence":
        return NOT_COMPUTED if _is_missing(value) else f"{float(value):.2f}"
    if _is_missing(value):
        return ""
    if column in FLAG_COLUMNS:
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report_order(classification: pd.DataFrame) -> pd.DataFrame:
    """Rows as report.md lists them: by verdict (GROUPS order), then category, then name."""
    rank = classification["group"].map(lambda g: GROUPS.index(g) if g in GROUPS else len(GROUPS))
    return (
        classification.assign(_rank=rank)
        .sort_values(["_rank", "category", "benchmark"])
        .drop(columns="_rank")
    )


def verdict_table(classification: pd.DataFrame) -> str:
    classification = report_order(classification)
    cols = table_columns(classification)
    kinds = {c: column_type(classification, c) for c in cols}
    head = "".join(
        f'<th data-key="{html.escape(c)}" data-type="{kinds[c]}"><button type="button">'
        f"{html.escape(c.replace('_', ' '))}</button></th>"
        for c in cols
    )
    rows = []
    for order, rec in enumerate(classification.to_dict("records")):
        cells = []
        for c in cols:
            style = f' style="color:{group_colour(rec[c])};font-weight:bold"' if c == "group" else ""
            cells.append(
                f'<td data-sort="{html.escape(_sort_value(c, kinds[c], rec[c]))}"{style}>'
                f"{html.escape(_shown(c, rec[c], rec))}</td>"
            )
        name = html.escape(str(rec.get("benchmark", "")))
        marked = ' class="borderline"' if rec.get("borderline") is True else ""
        rows.append(f'<tr data-order="{order}" data-benchmark="{name}"{marked}>{"".join(cells)}</tr>')
    return (
        f'<table id="verdicts"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure(path: Path, alt: str) -> str:
    return f'<img src="{data_uri(path)}" alt="{html.escape(alt)}">'


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th button { font: inherit; font-weight: bold; border: 0; background: none; cursor: pointer; padding: 0; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
#verdicts td:last-child { font-size: 12px; color: #555; }  /* the reason column */
img { max-width: 100%; }
details { margin: .3em 0; }
.counts span { display: inline-block; margin-right: 1.2em; font-weight: bold; }
tr.borderline td { font-style: italic; background: #fbf6e9; }
"""

# Sorting: stable (ties keep the reducer's order), missing values last in either direction.
_SCRIPT = """
const table = document.getElementById("verdicts");
function sortBy(key, desc) {
  const th = table.querySelector(`th[data-key="${key}"]`);
  if (!th) return false;
  const idx = Array.from(th.parentNode.children).indexOf(th);
  const numeric = th.dataset.type === "number";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = a.cells[idx].dataset.sort, y = b.cells[idx].dataset.sort;
    if (x === "" || y === "") return (x === "") - (y === "") || a.dataset.order - b.dataset.order;
    const c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
    return (desc ? -c : c) || a.dataset.order - b.dataset.order;
  });
  rows.forEach((r) => body.appendChild(r));
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", desc ? "descending" : "ascending");
  table.dataset.sortedBy = key + (desc ? ":desc" : "");
  return true;
}
table.querySelectorAll("th").forEach((th) => {
  th.querySelector("button").addEventListener("click", () => {
    sortBy(th.dataset.key, th.getAttribute("aria-sort") === "ascending");
  });
});
const query = new URLSearchParams(window.location.search);
if (query.get("sort")) sortBy(query.get("sort"), query.get("desc") === "1");
"""


def _confidence_note(reduction: Reduction) -> str:
    opts = reduction.options
    if not opts.bootstrap:
        return "Confidence not computed (--bootstrap 0)."
    return (
        f"Confidence = share of {opts.bootstrap} seeded redraws (seed {opts.seed}) of every point's "
        f"correct count that give the same group; borderline (rows in italics) below {BORDERLINE_BELOW:.0%}."
    )


def report_html(
    reduction: Reduction, figures: dict[str, Path] | None = None, history: Sequence[HistoryEntry] = ()
) -> str:
    """The page; ``figures`` maps names (``overview``, ``composite``, ``benchmarks/<name>``) to PNGs;
    ``history``: the run's verdict history (``benchcal.history``), this reduction's entry last."""
    cls = reduction.classification
    comp = reduction.composite
    figures = figures or {}
    counts = "".join(
        f'<span style="color:{group_colour(g)}">{html.escape(g)}: {int((cls["group"] == g).sum())}</span>'
        for g in [*GROUPS, *sorted(set(cls["group"]) - set(GROUPS))]
        if (cls["group"] == g).any()
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>benchcal calibration report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>benchcal calibration report</h1>",
        f"<p>{reduction.checkpoints.shape[0]} checkpoints, {len(cls)} benchmarks. "
        f"Gauntlet composite monotone in FLOPs: before calibration <b>{comp['before']['monotone']}</b>, "
        f"after <b>{comp['after']['monotone']}</b>.</p>",
        f'<p class="counts">{counts}</p>',
    ]
    if "overview" in figures:
        parts.append(_figure(figures["overview"], "overview: every benchmark by verdict"))
    parts += [
        "<h2>Verdicts</h2>",
        f"<p>{html.escape(_confidence_note(reduction))} "
        "Click a column header to sort (again to reverse); <code>?sort=column&amp;desc=1</code> "
        "in the address does the same.</p>",
        verdict_table(cls),
    ]
    if history:
        parts.append(history_html(history))
    for title, items in (("Warnings", reduction.warnings), ("Not applied", reduction.notes)):
        if items:
            lis = "".join(f"<li>{html.escape(w)}</li>" for w in items)
            parts.append(f"<h2>{title}</h2><ul>{lis}</ul>")
    if "composite" in figures:
        parts += ["<h2>Gauntlet composite</h2>", _figure(figures["composite"], "composite before and after")]
    per_benchmark = sorted(k for k in figures if k.startswith("benchmarks/"))
    if per_benchmark:
        parts.append("<h2>Per benchmark</h2>")
        for key in per_benchmark:
            name = key.split("/", 1)[1]
            parts.append(
                f"<details><summary>{html.escape(name)}</summary>{_figure(figures[key], name)}</details>"
            )
    if not figures:
        parts.append("<p>Figures were not rendered (<code>--no-figures</code>).</p>")
    parts += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"
