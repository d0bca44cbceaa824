"""Disk housekeeping of the image builds (tests/images/storage.py): which images are superseded,
and the free-space check that stops a build before podman runs out of disk half-way."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.images import build, storage
from tests.images.require import require

HASH, RECIPE = storage.OUR_LABELS


def _image(image_id: str, parent: str = "", names=None, containers: int = 0, **labels: str) -> dict:
    return {"Id": image_id, "ParentId": parent, "Names": names, "Containers": containers, "Labels": labels}


def test_superseded_keeps_tagged_images_and_the_layer_cache_under_them() -> None:
    records = [
        _image("base", names=["localhost/benchcal-python-base:bookworm"], **{RECIPE: "r1"}),
        # this build: base -> torch layer -> venv layer -> final (tagged)
        _image("torch", "base", **{RECIPE: "r1"}),
        _image("venv2", "torch", **{RECIPE: "r1"}),
        _image("final2", "venv2", names=["localhost/benchcal-evaluator:dev"], **{RECIPE: "r1", HASH: "h2"}),
        # the previous build shared the torch layer; its venv layer and final lost their tag
        _image("venv1", "torch", **{RECIPE: "r1"}),
        _image("final1", "venv1", **{RECIPE: "r1", HASH: "h1"}),
        # a stage of the previous build that no final image is built FROM (the wheel stage)
        _image("wheel1", "base", **{RECIPE: "r1", HASH: "h1"}),
    ]
    assert storage.superseded(records) == ["final1", "venv1", "wheel1"]


def test_superseded_leaves_other_projects_and_images_in_use_alone() -> None:
    records = [
        _image("theirs", **{"org.example": "x"}),  # untagged, but not ours
        _image("unlabelled"),
        _image("old-base", **{RECIPE: "r0"}),
        _image("running", "old-base", containers=1, **{HASH: "h0"}),
    ]
    assert storage.superseded(records) == []
    records[3]["Containers"] = 0
    assert storage.superseded(records) == ["running", "old-base"]  # children before parents


def test_space_problem_names_the_storage_the_space_and_what_is_needed(tmp_path: Path) -> None:
    gb = storage.GB
    assert storage.space_problem(["operator"], tmp_path, 2 * gb) is None  # needs 1.5
    assert storage.space_problem([], tmp_path, 0) is None
    problem = storage.space_problem(["reducer", "evaluator"], tmp_path, int(6.5 * gb))  # needs 3.5 + 8.5
    assert problem is not None
    assert str(tmp_path) in problem and "6.5 GB free" in problem
    assert "reducer, evaluator needs about 12.0 GB" in problem
    assert "CONTAINERS_STORAGE_CONF" in problem


def test_check_free_space_stops_before_a_build_the_disk_cannot_hold(tmp_path: Path, monkeypatch) -> None:
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setitem(storage.NEEDED_BYTES, "evaluator", free * 2)
    lines: list[str] = []
    with pytest.raises(SystemExit, match="evaluator needs about"):
        storage.check_free_space(["evaluator"], tmp_path / "never" / "created", lines.append)
    assert lines[0].startswith(f"{tmp_path}: ") and lines[0].endswith(" GB free")  # the nearest existing dir
    storage.check_free_space(["operator"], tmp_path, lines.append)  # 1.5 GB: fits where the suite runs


@pytest.mark.podman
def test_superseded_reads_podman_s_own_listing(tmp_path: Path) -> None:
    """The real ``podman images --all --format json``: an image of ours that lost its tag is
    superseded; the tagged base it was built from, and that base's ancestors, are not."""
    require(base=True)
    tag = f"localhost/benchcal-storage-test:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Containerfile").write_text(f"FROM {build.BASE_IMAGE}\nLABEL {HASH}=test-{tag[-8:]}\n")
    built = build.podman("build", "--pull=never", "--quiet", "--tag", tag, str(tmp_path))
    image_id = built.stdout.strip().splitlines()[-1]
    try:
        listing = json.loads(build.podman("images", "--all", "--format", "json").stdout)
        assert not any(image_id.startswith(i) or i.startswith(image_id) for i in storage.superseded(listing))
        build.podman("untag", tag)
        listing = json.loads(build.podman("images", "--all", "--format", "json").stdout)
        doomed = storage.superseded(listing)
        assert any(i.startswith(image_id) or image_id.startswith(i) for i in doomed)
        base_id = build.inspect(build.BASE_IMAGE)["Id"]
        assert base_id not in doomed
    finally:
        subprocess.run([*build.PODMAN, "rmi", "--force", image_id], capture_output=True, check=False)


class _FakePodman:
    """``podman images`` / ``podman rmi`` over a list of records; rmi also drops the untagged
    parents no other image needs, as podman does."""

    def __init__(self, records: list[dict], busy: set[str] = frozenset()) -> None:
        self.records, self.busy = records, set(busy)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[0] == "images":
            return subprocess.CompletedProcess(args, 0, json.dumps(self.records), "")
        image_id = args[1]
        if image_id in self.busy:
            return subprocess.CompletedProcess(args, 2, "", f"image {image_id} is in use by a container")
        if image_id not in {r["Id"] for r in self.records}:
            return subprocess.CompletedProcess(args, 1, "", f"{image_id}: image not known")
        while image_id:
            record = next(r for r in self.records if r["Id"] == image_id)
            self.records.remove(record)
            parent = record.get("ParentId")
            others = [r for r in self.records if r.get("ParentId") == parent]
            image_id = parent if parent and not others and not _tagged(self.records, parent) else ""
        return subprocess.CompletedProcess(args, 0, "", "")


def _tagged(records: list[dict], image_id: str) -> bool:
    return any(r["Id"] == image_id and r.get("Names") for r in records)


def test_remove_superseded_counts_what_podman_removed_with_its_parents() -> None:
    records = [
        _image("base", names=["localhost/benchcal-python-base:bookworm"], **{RECIPE: "r1"}),
        _image("venv1", "base", **{RECIPE: "r1"}),
        _image("final1", "venv1", **{RECIPE: "r1", HASH: "h1"}),
        _image("wheel1", "base", **{RECIPE: "r1", HASH: "h1"}),
    ]
    fake, lines = _FakePodman(records), []
    assert storage.remove_superseded(fake, lines.append) == 3
    assert [r["Id"] for r in fake.records] == ["base"]
    assert lines == ["removed 3 superseded image(s) of earlier builds (no tag needs them)"]


def test_remove_superseded_reports_an_image_it_could_not_remove() -> None:
    records = [_image("old", **{HASH: "h0"}), _image("older", **{HASH: "h-1"})]
    fake, lines = _FakePodman(records, busy={"old"}), []
    assert storage.remove_superseded(fake, lines.append) == 1
    assert lines[0].startswith("kept superseded image old: image old is in use by a container")
    assert lines[1] == "removed 1 superseded image(s) of earlier builds (no tag needs them)"
