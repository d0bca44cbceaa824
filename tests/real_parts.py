"""What a test does when a real part it needs (a model file, a browser) is absent.

A developer machine skips; CI (``CI`` set, as ``.ci/run`` does) fails naming what is missing, so a
green CI run never means "the real-part tests silently did not run".
"""

from __future__ import annotations

import os


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI); always raises."""
    import pytest  # here, so benchmarks can import tests.models without pytest

    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)
