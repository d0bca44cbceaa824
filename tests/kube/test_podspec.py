"""How the local node translates a container's spec (``tests/kube/podspec.py``)."""

from __future__ import annotations

from tests.kube.podspec import rewrite_paths


def test_path_rewriting_is_one_pass_and_whole_components() -> None:
    mounts = [("/tmp", "/node/pod/tmp"), ("/benchcal/results", "/tmp/claim")]
    text = "--out /benchcal/results/run --cache /tmp/hf --keep /tmpfoo /data/tmp"
    assert (
        rewrite_paths(text, mounts)
        == "--out /tmp/claim/run --cache /node/pod/tmp/hf --keep /tmpfoo /data/tmp"
    )
    assert rewrite_paths("/dev/termination-log", [("/dev/termination-log", "/x/t")]) == "/x/t"
