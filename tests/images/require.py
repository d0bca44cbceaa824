"""Tests that run real containers say exactly what they lack: podman, runc, an image, a fresh image.

On CI (``CI`` set), or wherever podman is installed, a missing or stale image is a failure that
names it; only a developer machine without podman may skip these tests.
"""

from __future__ import annotations

import functools
import os
import shutil

import pytest

from tests.images import build
from tests.kube import podman


@functools.cache
def problems(targets: tuple[str, ...], base: bool) -> tuple[str, ...]:
    if reason := podman.missing():
        return (reason,)
    out = []
    if base and build.inspect(build.BASE_IMAGE) is None:
        out.append(f"{build.BASE_IMAGE} is not present: run make images")
    for target in targets:
        state, detail = build.image_state(target)
        if state != "fresh":
            out.append(detail)
    return tuple(out)


def require(*targets: str, base: bool = False) -> None:
    """Fail, or skip on a developer machine without podman, unless the images are there and fresh."""
    found = problems(tuple(targets), base)
    if not found:
        return
    message = "the container tests need: " + "; ".join(found)
    if os.environ.get("CI") or shutil.which("podman"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
