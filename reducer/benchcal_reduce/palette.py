"""The verdict colours, shared by the PNG figures and the HTML page (no matplotlib here)."""

from __future__ import annotations

GROUP_COLOURS = {
    "robust": "#1b7837",
    "shot_dependent": "#2166ac",
    "poorly_behaved": "#d6604d",
    "noise": "#878787",
    "insufficient_data": "#b2abd2",
}
OTHER_COLOUR = "#444444"  # a group this palette does not know yet


def group_colour(group: str) -> str:
    return GROUP_COLOURS.get(group, OTHER_COLOUR)
