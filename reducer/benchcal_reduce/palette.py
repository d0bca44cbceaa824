"""The verdict colours, shared by the PNG figures and the HTML page (no matplotlib here)."""

from __future__ import annotations

from benchcal.classification import INCONCLUSIVE, NOISE, POORLY_BEHAVED, ROBUST, SHOT_DEPENDENT

GROUP_COLOURS = {
    ROBUST: "#1b7837",
    SHOT_DEPENDENT: "#2166ac",
    POORLY_BEHAVED: "#d6604d",
    NOISE: "#878787",
    INCONCLUSIVE: "#b2abd2",
}
OTHER_COLOUR = "#444444"  # a group this palette does not know


def group_colour(group: str) -> str:
    return GROUP_COLOURS.get(group, OTHER_COLOUR)
