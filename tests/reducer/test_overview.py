"""The overview figure: its layout as plain data, and the drawn grid (one panel per benchmark,
verdict blocks in their colours)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from benchcal_reduce.overview import PANEL_INCHES, overview_figure, overview_layout, panel_title
from benchcal_reduce.palette import GROUP_COLOURS, OTHER_COLOUR, group_colour
from benchcal_reduce.reduce import reduce_table

from .tables import make_table, pinned_options, valid


def _cls(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["benchmark", "category", "group"])


def test_layout_groups_by_verdict_in_order_then_category_then_name_each_block_on_new_rows():
    cls = _cls([
        ("z_noise", "a", "noise"), ("b", "wk", "robust"), ("a", "wk", "robust"), ("c", "cr", "robust"),
        ("d", "cr", "poorly_behaved"), ("e", "x", "inconclusive"), ("f", "x", "shot_dependent"),
        ("g", "x", "some_future_group"),
    ])  # fmt: skip
    blocks = overview_layout(cls, columns=2)
    assert [(b.group, b.rows) for b in blocks] == [
        ("robust", (("c", "a"), ("b",))),  # cr before wk, then by name; 3 panels -> 2 rows of 2
        ("shot_dependent", (("f",),)),
        ("poorly_behaved", (("d",),)),
        ("noise", (("z_noise",),)),
        ("inconclusive", (("e",),)),
        ("some_future_group", (("g",),)),  # a group this module does not know still gets its block
    ]


def test_every_verdict_has_its_own_colour_and_an_unknown_one_a_neutral_colour():
    from benchcal.classification import GROUPS

    assert set(GROUP_COLOURS) == set(GROUPS)
    assert len(set(GROUP_COLOURS.values()) | {OTHER_COLOUR}) == len(GROUPS) + 1
    assert group_colour("some_future_group") == OTHER_COLOUR


def test_panel_title_carries_shots_confidence_and_flags():
    row = {"recommended_shots": 3, "confidence": 0.968, "borderline": False, "latent_trend": False}
    assert panel_title("arc_easy", row) == "arc_easy (3-shot)\nconf. 0.97"
    row = {"recommended_shots": pd.NA, "confidence": 0.61, "borderline": True, "latent_trend": True}
    assert panel_title("lambada", row) == "lambada\nconf. 0.61 borderline, latent trend"
    row = {"recommended_shots": pd.NA, "confidence": float("nan"), "borderline": False, "latent_trend": False}
    assert panel_title("x", row) == "x\nconf. not computed"  # --bootstrap 0


def _colour_pixels(img: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).sum(axis=2) < 30).sum())


def test_figure_has_a_panel_per_benchmark_in_verdict_colours(tmp_path):
    series = {
        ("good", 0): [0.30, 0.36, 0.42, 0.48], ("good", 5): [0.32, 0.38, 0.44, 0.50],
        ("fine", 0): [0.31, 0.37, 0.43, 0.49], ("fine", 5): [0.30, 0.36, 0.42, 0.50],
        ("chance", 0): [0.25, 0.26, 0.24, 0.25], ("chance", 5): [0.25, 0.25, 0.26, 0.25],
        # above chance, but 60 items cannot tell flat from rising: inconclusive
        ("few", 0): [0.50, 0.44, 0.56, 0.57], ("few", 5): [0.48, 0.55, 0.46, 0.58],
    }  # fmt: skip
    n = {"good": 1000, "fine": 1000, "chance": 1000, "few": 60}
    reduction = reduce_table(valid(make_table(series, n=n)), pinned_options())
    assert dict(zip(reduction.classification["benchmark"], reduction.classification["group"], strict=True)) == {
        "chance": "noise", "fine": "robust", "good": "robust", "few": "inconclusive"}  # fmt: skip
    path = overview_figure(reduction, tmp_path / "figures" / "overview.png")
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    # 2 columns (the largest verdict), 3 rows (robust, noise, inconclusive) of panels at 100 dpi
    assert img.shape[1] == round((PANEL_INCHES[0] * 2 + 1.2) * 100)
    assert img.shape[0] == round((PANEL_INCHES[1] * 3 + 1.1) * 100)
    assert _colour_pixels(img, GROUP_COLOURS["robust"]) > 500
    assert _colour_pixels(img, GROUP_COLOURS["noise"]) > 200
    assert _colour_pixels(img, GROUP_COLOURS["inconclusive"]) > 200
    assert _colour_pixels(img, GROUP_COLOURS["poorly_behaved"]) == 0  # no such verdict here
    # the lower-right cell is empty (inconclusive has one benchmark), so no axes there: plain white
    h, w = img.shape[:2]
    assert (img[int(h * 0.72) : int(h * 0.88), int(w * 0.62) : int(w * 0.9)] == 255).all()
