"""report/index.html: self-contained (no network), and in a real headless chromium the verdict
table is there, sorts by ?sort= and by real clicks on its headers, and the page is not blank."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from PIL import Image

from benchcal import history
from benchcal.classification import GROUPS, BenchmarkVerdict, StatusClassification
from benchcal_reduce.html_report import report_html, table_columns, verdict_table
from benchcal_reduce.reduce import reduce_table
from benchcal_reduce.report import status_summary, write_outputs

from .browser import DevTools, dump_dom, screenshot
from .tables import make_table, pinned_options, valid

SERIES = {
    ("good", 0): [0.30, 0.36, 0.42, 0.48, 0.55], ("good", 5): [0.32, 0.38, 0.44, 0.50, 0.56],
    ("also_good", 0): [0.31, 0.37, 0.43, 0.49, 0.51], ("also_good", 5): [0.30, 0.36, 0.42, 0.48, 0.60],
    ("shotdep", 0): [0.40, 0.30, 0.45, 0.28, 0.44], ("shotdep", 5): [0.30, 0.36, 0.42, 0.48, 0.58],
    ("poor", 0): [0.50, 0.30, 0.55, 0.28, 0.44], ("poor", 5): [0.55, 0.31, 0.52, 0.29, 0.50],
    ("chance", 0): [0.25, 0.26, 0.24, 0.25, 0.25], ("chance", 5): [0.25, 0.25, 0.26, 0.25, 0.25],
    # above chance, but 60 items cannot tell flat from rising: inconclusive, and borderline
    ("few", 0): [0.50, 0.44, 0.56, 0.47, 0.57], ("few", 5): [0.48, 0.55, 0.46, 0.58, 0.52],
}  # fmt: skip
ITEMS = {"good": 1000, "also_good": 1000, "shotdep": 1000, "poor": 1000, "chance": 1000, "few": 60}
ROBUST_GREEN = (0x1B, 0x78, 0x37)


def run_history(reduction) -> tuple[history.HistoryEntry, ...]:
    """This reduction as generation 2 of a run whose generation 1 had three checkpoints, when
    "good" was still noise (and "few" not evaluated yet)."""
    earlier = StatusClassification.from_verdicts(
        [BenchmarkVerdict(b, "noise") for b in ("good", "also_good", "chance")]
        + [BenchmarkVerdict("shotdep", "shot_dependent", 5), BenchmarkVerdict("poor", "poorly_behaved")]
    )
    first = history.make_entry(earlier, generation=1, checkpoints=["c0", "c1", "c2"], pairs=[("good", 0)])
    pairs = set(zip(reduction.table["benchmark"], reduction.table["num_fewshot"].astype(int), strict=True))
    current = history.make_entry(
        status_summary(reduction),
        generation=2,
        checkpoints=list(reduction.checkpoints["checkpoint"]),
        pairs=pairs,
    )
    return history.extend((first,), current)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    reduction = reduce_table(valid(make_table(SERIES, n=ITEMS)), pinned_options())
    out = tmp_path_factory.mktemp("report")
    write_outputs(reduction, out, history=run_history(reduction))
    return reduction, out


def _confidence(reduction) -> dict[str, float]:
    cls = reduction.classification
    return dict(zip(cls["benchmark"], cls["confidence"].astype(float), strict=True))


def _groups(reduction) -> dict[str, str]:
    cls = reduction.classification
    return dict(zip(cls["benchmark"], cls["group"], strict=True))


def _row_order(dom: str) -> list[str]:
    body = dom[dom.index('<table id="verdicts"') :]
    return re.findall(r'<tr data-order="\d+" data-benchmark="([^"]+)"', body)


def test_the_example_covers_every_verdict(report):
    reduction, _ = report
    assert set(_groups(reduction).values()) == set(GROUPS)
    confidence = _confidence(reduction)
    assert confidence["few"] < 0.8 and reduction.classification.set_index("benchmark").at["few", "borderline"]
    assert len(set(confidence.values())) >= 3  # sorting by confidence is told apart from the default order


def test_page_is_self_contained(report):
    _, out = report
    page = (out / "index.html").read_text()
    assert not re.search(r"https?://", page), "the page must not reach the network"
    assert "<link" not in page and not re.search(r"<script[^>]*\bsrc=", page)
    srcs = re.findall(r'<img src="([^"]+)"', page)
    # overview, composite and one per benchmark, each an embedded PNG
    assert len(srcs) == 2 + len(SERIES) // 2
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.index("overview") < page.index('<table id="verdicts"')


def test_table_shows_confidence_and_flags_after_the_group(report):
    reduction, out = report
    cols = table_columns(reduction.classification)
    assert cols[:6] == ["benchmark", "category", "group", "confidence", "borderline", "latent_trend"]
    page = (out / "index.html").read_text()
    row = re.search(r'<tr data-order="\d+" data-benchmark="few" class="borderline">(.*?)</tr>', page)
    assert row, "the borderline verdict's row is marked"
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    conf = _confidence(reduction)["few"]
    assert cells[2:6] == ["inconclusive", f"{conf:.2f}", "yes", "no"]
    assert "borderline (rows in italics) below 80%" in page


def test_latent_trend_and_missing_confidence_are_shown_as_such(report):
    reduction, _ = report
    cls = reduction.classification.copy()
    cls.loc[cls["benchmark"] == "chance", "latent_trend"] = True
    cls["confidence"] = float("nan")  # as with --bootstrap 0
    table = verdict_table(cls)
    row = re.search(r'data-benchmark="chance">(.*?)</tr>', table).group(1)
    cells = re.findall(r'<td data-sort="([^"]*)"[^>]*>([^<]*)</td>', row)
    assert cells[2][1] == "noise (latent trend)" and cells[5] == ("yes", "yes")
    assert cells[3] == ("", "not computed")  # sorts last


def test_report_html_without_figures_says_so(report):
    reduction, _ = report
    page = report_html(reduction, {})
    assert "<img" not in page and "--no-figures" in page and '<table id="verdicts"' in page


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("sort=group", lambda name, g, c: (GROUPS.index(g),)),
        ("sort=group&desc=1", lambda name, g, c: (-GROUPS.index(g),)),
        ("sort=confidence&desc=1", lambda name, g, c: (-c,)),
        ("sort=benchmark", lambda name, g, c: (name,)),
    ],
)
def test_chromium_runs_the_script_and_sorts_by_query(report, tmp_path, query, key):
    reduction, out = report
    groups = _groups(reduction)
    confidence = _confidence(reduction)
    dom = dump_dom(f"{(out / 'index.html').as_uri()}?{query}", tmp_path / "profile")
    rows = _row_order(dom)
    assert sorted(rows) == sorted(groups), "every benchmark has a row"
    default = _row_order((out / "index.html").read_text())  # ties keep this order (stable sort)
    expected = sorted(groups, key=lambda n: (*key(n, groups[n], confidence[n]), default.index(n)))
    assert rows == expected
    assert f'data-sorted-by="{query.split("=", 1)[1].replace("&desc=1", ":desc")}"' in dom


def test_chromium_shows_the_verdicts_per_generation(report, tmp_path):
    reduction, out = report
    dom = dump_dom((out / "index.html").as_uri(), tmp_path / "profile")
    part = dom[dom.index('<table id="history"') :]
    head = re.findall(r'<th data-generation="(\d+)">([^<]+)</th>', part)
    assert head == [("1", "gen 1 (3 ckpts)"), ("2", "gen 2 (5 ckpts)")]
    rows = dict(re.findall(r'<tr data-benchmark="([^"]+)"><td>[^<]*</td>(.*?)</tr>', part))
    assert sorted(rows) == sorted(_groups(reduction)), "every benchmark has a row"
    cells = {name: re.findall(r"<td[^>]*>([^<]*)</td>", row) for name, row in rows.items()}
    assert cells["good"] == ["noise", "robust, 0-shot"]
    assert cells["few"] == ["—", "inconclusive"]  # not evaluated in generation 1
    assert "<li>good: noise (3 ckpts) → robust (5 ckpts)</li>" in part
    assert "also_good: noise (3 ckpts) → robust (5 ckpts)" in part
    assert "chance: noise" not in part  # unchanged: no line
    assert dom.index('<table id="verdicts"') < dom.index('<table id="history"')


def test_clicking_headers_sorts_the_table(report, tmp_path):
    reduction, out = report
    confidence = _confidence(reduction)
    order = "Array.from(document.querySelectorAll('#verdicts tbody tr')).map(r => r.dataset.benchmark)"
    generations = "Array.from(document.querySelectorAll('#history tbody tr')).map(r => r.dataset.benchmark)"
    with DevTools((out / "index.html").as_uri(), tmp_path / "profile") as page:
        page.wait_for("document.readyState === 'complete' && !!document.getElementById('verdicts')")
        history_rows = page.evaluate(generations)
        assert history_rows == sorted(confidence)
        default = page.evaluate(order)
        page.click('th[data-key="confidence"] button')  # ties keep the default order (stable)
        ascending = sorted(confidence, key=lambda n: (confidence[n], default.index(n)))
        assert page.evaluate(order) == ascending != default
        page.click('th[data-key="confidence"] button')  # again: reversed
        assert page.evaluate(order) == sorted(confidence, key=lambda n: (-confidence[n], default.index(n)))
        assert page.evaluate(
            "document.querySelector('th[data-key=confidence]').getAttribute('aria-sort')"
        ) == ("descending")
        page.click('th[data-key="benchmark"] button')
        assert page.evaluate(order) == sorted(confidence)
        assert page.evaluate(generations) == history_rows  # the sorting touches the verdict table only


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_screenshot_is_not_blank_and_shows_the_verdict_colours(report, tmp_path):
    _, out = report
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    control = _pixels(screenshot(blank.as_uri(), tmp_path / "blank.png", tmp_path / "p1"))
    shot = _pixels(screenshot((out / "index.html").as_uri(), tmp_path / "page.png", tmp_path / "p2"))
    assert shot.shape == control.shape == (1600, 1280, 3)
    assert control.std() < 1.0  # the measure tells a blank page apart
    assert shot.std() > 20.0
    inked = (np.abs(shot - 255).sum(axis=2) > 60).mean()
    assert inked > 0.03, f"only {inked:.1%} of the page is drawn"
    green = (np.abs(shot - np.array(ROBUST_GREEN)).sum(axis=2) < 40).sum()
    assert green > 200, "the robust verdict's colour (table text, overview panels) is on screen"
