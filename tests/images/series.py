"""Seed a host cache with the tiny series baked into the evaluator image (process-mode e2e pods
share that cache): one build per image instead of one more on the host. ``ensure_model`` then
verifies every file against the checksums the image recorded, so a bad copy cannot slip through.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from tests.images import build
from tests.kube.podman import PODMAN

BAKED = "/opt/venv/share/benchcal/tiny-series"


def seed_from_image(cache_root: Path, key: str) -> bool:
    """Copy ``<key>`` from the fresh evaluator image into ``cache_root/tiny-series``; False if it cannot.

    Parallel test workers (pytest-xdist) each seed once per session: they take the lock
    ``ensure_model`` builds under, so one copies while the others wait and then find it there.
    """
    dest = cache_root / "tiny-series" / key
    if (dest / "series.json").exists():
        return True
    if build.image_state("evaluator")[0] != "fresh":
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / "series.json").exists():  # another worker seeded it while this one waited
            return True
        return _copy_from_image(dest, key)


def _copy_from_image(dest: Path, key: str) -> bool:
    tmp = dest.parent / f".seed-{key}"
    shutil.rmtree(tmp, ignore_errors=True)
    cid = subprocess.run(
        [*PODMAN, "create", "--pull=never", build.image_name("evaluator")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        subprocess.run([*PODMAN, "cp", f"{cid}:{BAKED}/{key}", str(tmp)], check=True, capture_output=True)
    finally:
        subprocess.run([*PODMAN, "rm", "--force", cid], capture_output=True, check=False)
    if not (tmp / "series.json").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    tmp.replace(dest)
    return True
