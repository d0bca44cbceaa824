"""The image build's cache key and pip settings (pure parts of tests/images/build.py; no podman)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.images import build, pip_inside

REPO = Path(__file__).resolve().parents[2]


def _copy_context(dest: Path) -> Path:
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    for package in ("benchcal", "evaluator", "reducer", "operator"):
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_hash_covers_exactly_what_the_dockerfile_copies(tmp_path: Path) -> None:
    ctx = _copy_context(tmp_path)
    before = build.content_hash("base-1", ctx)
    assert build.content_hash("base-1", ctx) == before  # deterministic
    assert build.content_hash("base-2", ctx) != before  # a rebuilt base rebuilds the images
    (ctx / "docs").mkdir()
    (ctx / "docs" / "x.md").write_text("not in the image")
    (ctx / "operator" / "__pycache__").mkdir(exist_ok=True)
    (ctx / "operator" / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    assert build.content_hash("base-1", ctx) == before
    source = ctx / "evaluator" / "benchcal_eval" / "tiny_series.py"
    source.write_text(source.read_text() + "\n# changed\n")
    assert build.content_hash("base-1", ctx) != before
    source.write_text(source.read_text().removesuffix("\n# changed\n"))
    (ctx / "pyproject.toml").write_text((ctx / "pyproject.toml").read_text() + "\n")
    assert build.content_hash("base-1", ctx) != before


def test_copied_sources_and_dockerignore() -> None:
    text = "FROM x AS a\nCOPY pyproject.toml README.md ./\nCOPY --from=a /dist/ /dist/\nCOPY benchcal/ \\\n  benchcal/\n"
    assert build.copied_sources(text) == ["pyproject.toml", "README.md", "benchcal/"]
    patterns = build.dockerignore_patterns("# c\n**/__pycache__\n*.log\ntests\n")
    assert build.ignored("benchcal/__pycache__/a.pyc", patterns)
    assert build.ignored("x.log", patterns) and build.ignored("tests/a.py", patterns)
    assert not build.ignored("benchcal/cli.py", patterns)


def test_pip_in_the_build_sees_this_machines_indexes_read_only(tmp_path: Path, monkeypatch) -> None:
    wheels = tmp_path / "wheels"
    (tmp_path / "pypi" / "simple").mkdir(parents=True)
    wheels.mkdir()
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    host = {"find-links": str(wheels), "extra-index-url": f"file://{tmp_path}/pypi/simple", "cert": str(ca)}
    monkeypatch.setattr(pip_inside, "host_pip_config", lambda: host)
    monkeypatch.delenv("PIP_CERT", raising=False)
    conf, volumes = pip_inside.pip_settings(tmp_path)
    text = conf.read_text()
    assert f"find-links = {wheels}" in text and f"extra-index-url = file://{tmp_path}/pypi/simple" in text
    assert f"cert = {pip_inside.CA_IN_BUILD}" in text  # a path of its own, not the image's bundle
    mounts = [volumes[i + 1] for i in range(0, len(volumes), 2)]
    assert f"{wheels}:{wheels}:ro" in mounts and f"{tmp_path}/pypi:{tmp_path}/pypi:ro" in mounts
    assert f"{ca}:{pip_inside.CA_IN_BUILD}:ro" in mounts and f"{conf.parent}:/etc/xdg/pip:ro" in mounts
