"""The verdicts per generation, for report.md, index.html and summary.json.

One table, benchmark x generation: each cell the benchmark's verdict in that reduction (with its
recommended shots), each column headed by its generation and how many checkpoints it reduced
over; below it the ``benchcal.history.changes`` lines. With one entry the table still says which
generation and checkpoints the verdicts come from.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from benchcal.history import HistoryEntry, changes
from benchcal_reduce.palette import group_colour

ABSENT = "—"  # not evaluated in that generation (added later), or beyond the listed benchmarks


def column_title(entry: HistoryEntry) -> str:
    return f"gen {entry.generation} ({entry.count} ckpts)"


def benchmarks(history: Sequence[HistoryEntry]) -> list[str]:
    return sorted({v.name for e in history for v in e.verdicts})


def history_markdown(history: Sequence[HistoryEntry]) -> list[str]:
    """The report.md section (lines), or none without a history."""
    if not history:
        return []
    cols = [column_title(e) for e in history]
    by = [e.by_name() for e in history]
    out = [
        "## Verdicts per generation",
        "",
        "Each reduction of this run (oldest first): its spec generation, the checkpoints it reduced over, "
        "and every benchmark's verdict (recommended shots)."
        + (
            " Some entries list only the first benchmarks by name."
            if any(e.truncated for e in history)
            else ""
        ),
        "",
        "| benchmark | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name in benchmarks(history):
        cells = [b[name].label() if name in b else ABSENT for b in by]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    lines = changes(history)
    out += ["", *([f"- {line}" for line in lines] or ["No verdict changed between generations."]), ""]
    return out


def history_html(history: Sequence[HistoryEntry]) -> str:
    """The index.html section (``<table id="history">`` and the change list), or "" without a history."""
    if not history:
        return ""
    head = "".join(
        f'<th data-generation="{e.generation}">{html.escape(column_title(e))}</th>' for e in history
    )
    by = [e.by_name() for e in history]
    rows = []
    for name in benchmarks(history):
        cells = []
        for b in by:
            v = b.get(name)
            if v is None:
                cells.append(f"<td>{ABSENT}</td>")
            else:
                style = f' style="color:{group_colour(v.group)};font-weight:bold"'
                cells.append(f'<td data-group="{html.escape(v.group)}"{style}>{html.escape(v.label())}</td>')
        rows.append(
            f'<tr data-benchmark="{html.escape(name)}"><td>{html.escape(name)}</td>{"".join(cells)}</tr>'
        )
    lines = changes(history)
    listed = (
        '<ul id="changes">' + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"
        if lines
        else '<p id="changes">No verdict changed between generations.</p>'
    )
    return (
        "<h2>Verdicts per generation</h2>"
        "<p>Each reduction of this run, oldest first: its spec generation and the checkpoints it reduced over.</p>"
        f'<table id="history"><thead><tr><th>benchmark</th>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + f"\n</tbody></table>\n{listed}"
    )


def history_summary(history: Sequence[HistoryEntry]) -> dict[str, Any]:
    """summary.json's ``history``: the entries (as status.history holds them) and the change lines."""
    return {"entries": [e.to_status() for e in history], "changes": changes(history)}
