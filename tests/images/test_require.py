"""Container tests fail, never skip, on CI when podman or an image is missing (tests/images/require.py),
and the container-mode e2e world asks before it starts anything. No podman is run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import harness
from tests.images import build, require
from tests.kube import podman


@pytest.fixture(autouse=True)
def _fresh_cache():
    require.problems.cache_clear()
    yield
    require.problems.cache_clear()


def _no_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        podman, "missing", lambda: "podman and runc not installed (make images installs them)"
    )
    monkeypatch.setattr(require.shutil, "which", lambda tool: None)


def test_missing_podman_fails_on_ci_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_podman(monkeypatch)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="podman and runc not installed"):
        require.require("evaluator")


def test_missing_podman_skips_only_off_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_podman(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="podman and runc not installed"):
        require.require("evaluator")


@pytest.mark.parametrize("state", ["missing", "stale", "no-base"])
def test_an_image_that_is_not_fresh_fails_where_podman_is_installed(
    monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    monkeypatch.setattr(podman, "missing", lambda: None)
    monkeypatch.setattr(require.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.delenv("CI", raising=False)  # podman installed: a developer machine fails too
    detail = f"{build.image_name('reducer')} is {state}: run make images"
    monkeypatch.setattr(
        build, "image_state", lambda t: (state, detail) if t == "reducer" else ("fresh", "ok")
    )
    with pytest.raises(pytest.fail.Exception) as failed:
        require.require("evaluator", "reducer")
    assert detail in str(failed.value) and "evaluator" not in str(failed.value).split(": ", 1)[1]


def test_the_container_e2e_world_fails_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_podman(monkeypatch)
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("E2E_RUNTIME", raising=False)
    monkeypatch.delenv("E2E_KUBECONFIG", raising=False)
    started = []
    monkeypatch.setattr(harness, "LocalCluster", lambda *a, **k: started.append(a))
    with pytest.raises(pytest.fail.Exception, match="podman and runc not installed"):
        harness.E2E(tmp_path, runtime="podman")
    assert started == []
