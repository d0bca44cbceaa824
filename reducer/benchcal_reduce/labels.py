"""How a verdict is shown to people (report tables, figure titles, the CLI's lines).

Its own module so that ``report`` and ``figures`` both use it without importing each other.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def group_label(row: dict[str, Any]) -> str:
    """The group as shown to people: noise with a rising continuous metric is "noise (latent trend)"."""
    return f"{row['group']} (latent trend)" if row.get("latent_trend") else str(row["group"])


def confidence_label(row: dict[str, Any]) -> str:
    """ "0.97", "0.61 borderline", or "not computed" (``--bootstrap 0``)."""
    conf = row.get("confidence")
    if conf is None or pd.isna(conf):
        return "not computed"
    return f"{float(conf):.2f}" + (" borderline" if row.get("borderline") else "")
