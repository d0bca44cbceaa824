"""Each chart configuration is rendered once per session and shared by the chart test modules."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    pytest.importorskip("helm_python")
    from tests.charts.rendering import CONFIGS, objects, render

    return {name: objects(render(values)) for name, values in CONFIGS.items()}
