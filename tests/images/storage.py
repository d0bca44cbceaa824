"""Disk housekeeping of the local image builds (tests/images/build.py): one build at a time,
superseded images removed, and free space checked before a build starts.

Every image a build makes, the finals and each stage of the multi-stage build, carries
``dev.benchcal.content-hash`` (buildah puts ``--label`` on every stage) and the base's
``dev.benchcal.base-recipe``. When the sources change, the next build takes the ``:dev`` tags and
the old images stay behind untagged: several GB per build, which on a machine that builds for
every CI run filled the disk ("no space left on device" while the evaluator's venv was written).
An untagged image with one of those labels is therefore superseded (no tag names it, nothing of
ours can use it again) and is removed; tagged images, images of other projects and images a
container still uses are never touched.

Standard library only, like build.py (it runs with the system python3 before any venv exists).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

OUR_LABELS = ("dev.benchcal.content-hash", "dev.benchcal.base-recipe")
GB = 1000**3
# Free space each target's build needs in podman's storage: what a cold build of all three took,
# `df` sampled every 2 s (operator 1.1, reducer 3.1, evaluator 7.8 GB at the lowest, the layers it
# keeps plus the copy podman writes while committing a step; docs/testing.md "Disk"), plus 10 %.
NEEDED_BYTES = {"operator": int(1.5 * GB), "reducer": int(3.5 * GB), "evaluator": int(8.5 * GB)}
LOCK_PATH = Path(tempfile.gettempdir()) / "benchcal-images.lock"

Runner = Callable[..., subprocess.CompletedProcess[str]]


def superseded(records: Sequence[dict]) -> list[str]:
    """IDs of the images (``podman images --all --format json`` records) that our builds made and
    nothing needs any more, children before parents. Pure.

    Kept: every tagged image and its ancestors (``ParentId``, one per build step: they are the
    layer cache the next build starts from, e.g. the evaluator's torch layer when only the sources
    changed), images of other projects, and images a container uses."""
    by_id = {r["Id"]: r for r in records}
    keep: set[str] = set()
    for record in records:
        if record.get("Names") or record.get("Containers", 0):
            image_id: str | None = record["Id"]
            while image_id and image_id not in keep:
                keep.add(image_id)
                image_id = (by_id.get(image_id) or {}).get("ParentId") or None
    doomed = [
        r["Id"]
        for r in records
        if r["Id"] not in keep and any(label in (r.get("Labels") or {}) for label in OUR_LABELS)
    ]
    depth = {}
    for image_id in doomed:  # distance from the root: the deepest (the children) go first
        n, parent = 0, by_id[image_id].get("ParentId")
        while parent in by_id and n < len(by_id):
            n, parent = n + 1, by_id[parent].get("ParentId")
        depth[image_id] = n
    return sorted(doomed, key=lambda i: -depth[i])


def remove_superseded(podman: Runner, log: Callable[[str], None]) -> int:
    """Remove the superseded images; returns how many are gone. ``podman rmi`` also removes the
    untagged parents nothing else uses, so later IDs of the list may already be gone. One that
    stays (a container started meanwhile) is reported and left for the next build."""

    def listing() -> list[dict]:
        return json.loads(podman("images", "--all", "--format", "json").stdout or "[]")

    ids = superseded(listing())
    errors = {}
    for image_id in ids:
        proc = podman("rmi", image_id, check=False)
        if proc.returncode != 0:
            errors[image_id] = (proc.stderr or proc.stdout).strip()
    present = {r["Id"] for r in listing()}
    for image_id in ids:
        if image_id in present:
            log(f"kept superseded image {image_id[:12]}: {errors.get(image_id, '')[:200]}")
    removed = len([i for i in ids if i not in present])
    if ids:
        log(f"removed {removed} superseded image(s) of earlier builds (no tag needs them)")
    return removed


def graph_root(podman: Runner) -> Path:
    """Where podman keeps images (CONTAINERS_STORAGE_CONF may move it off the default)."""
    info = json.loads(podman("info", "--format", "json").stdout)
    return Path(info["store"]["graphRoot"])


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing parent (a storage that was never used has no directory)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def space_problem(targets: Sequence[str], root: Path, free_bytes: int) -> str | None:
    """The error for too little free space under ``root`` to build ``targets``, or None. Pure."""
    needed = sum(NEEDED_BYTES[t] for t in targets)
    if free_bytes >= needed:
        return None
    return (
        f"[images] {root} has {free_bytes / GB:.1f} GB free; building {', '.join(targets)} needs about "
        f"{needed / GB:.1f} GB (tests/images/storage.py NEEDED_BYTES). Free space there, or point "
        "CONTAINERS_STORAGE_CONF at a storage.conf whose graphroot is on a larger disk."
    )


def check_free_space(targets: Sequence[str], root: Path, log: Callable[[str], None]) -> None:
    where = existing_parent(root)
    free = shutil.disk_usage(where).free
    log(f"{where}: {free / GB:.1f} GB free")
    problem = space_problem(targets, root, free)
    if targets and problem:
        raise SystemExit(problem)


@contextlib.contextmanager
def build_lock(path: Path = LOCK_PATH) -> Iterator[None]:
    """One build at a time on this machine: a second waits. Two at once would remove each other's
    stage images (untagged while a build runs) and fight over the ``:dev`` tags."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
