"""The built-in tiny scaling series: its training text (pure) and a micro build."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchcal.errors import BadInput
from benchcal_eval import tiny_series as ts

MICRO = replace(ts.DEFAULT, steps=(("s1", 2), ("s2", 4)), corpus_examples=300, seq_len=32, batch_size=4)


def _balanced(seq: str) -> bool:
    stack = []
    for ch in seq.split():
        if ch in ts.PAIRS:
            stack.append(ts.PAIRS[ch])
        elif not stack or stack.pop() != ch:
            return False
    return not stack


def test_dyck_examples_close_exactly_what_is_open() -> None:
    import random

    rng = random.Random(0)
    for _ in range(200):
        body, answer = ts.dyck_example(rng)
        assert answer, "an example always leaves something to close"
        assert _balanced(f"{body} {answer}")
        assert not _balanced(body)


def test_arithmetic_examples_are_correct() -> None:
    import random

    rng = random.Random(1)
    for _ in range(200):
        context, answer = ts.arithmetic_example(rng)
        a, op, b, eq = context.split()
        assert eq == "="
        assert int(answer) == (int(a) + int(b) if op == "+" else int(a) - int(b))


def test_training_documents_are_deterministic_and_exclude_eval_rows() -> None:
    docs = ts.training_documents(MICRO)
    assert docs == ts.training_documents(MICRO)
    lines = [line for doc in docs for line in doc.split("\n")]
    contexts = [line.rsplit(" ", 1)[0] for line in lines if line.endswith(tuple("0123456789"))]
    banned = contexts[0]
    kept = ts.training_documents(MICRO, exclude=[banned])
    assert all(not line.startswith(banned + " ") for doc in kept for line in doc.split("\n"))


def test_excluded_contexts_come_from_the_shipped_benchmarks() -> None:
    excluded = ts.excluded_contexts()
    assert len(excluded) >= 1000  # bigbench_dyck_languages (1000 rows) + simple_arithmetic_withspaces (1000)
    assert any(c.startswith(ts.DYCK_PREFIX) for c in excluded)


def test_unknown_builtin_name_is_bad_input(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCHCAL_CACHE", str(tmp_path))
    with pytest.raises(BadInput, match="tiny-series/s1"):
        ts.ensure_model("tiny-series/s99", MICRO)


def test_micro_build_writes_loadable_checkpoints_with_flops(tmp_path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("BENCHCAL_CACHE", str(tmp_path))
    path = ts.ensure_model("tiny-series/s2", MICRO)
    info = json.loads((ts.series_dir(MICRO) / "series.json").read_text())
    assert [c["name"] for c in info["checkpoints"]] == ["s1", "s2"]
    s1, s2 = info["checkpoints"]
    assert s2["tokens"] == 2 * s1["tokens"] == 4 * MICRO.tokens_per_step
    assert s2["flops"] == 6 * info["params"] * s2["tokens"]
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == info["params"]
    assert len(tok(" a", add_special_tokens=False)["input_ids"]) == 1  # a prefix-space tokenizer
    # a second call finds the cache and does not rebuild
    mtime = (ts.series_dir(MICRO) / "series.json").stat().st_mtime
    assert ts.ensure_model("s1", MICRO) == ts.series_dir(MICRO) / "s1"
    assert (ts.series_dir(MICRO) / "series.json").stat().st_mtime == mtime


def test_build_pins_torch_threads_and_records_checksums(tmp_path, monkeypatch) -> None:
    """Weights must not depend on the building machine's core count (evaluator pods on different
    nodes, and the image build, all get the same series): the build runs on BUILD_THREADS threads
    whatever the caller set, restores the caller's setting, and records every file's SHA-256."""
    import torch

    before = torch.get_num_threads()
    digests = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            monkeypatch.setenv("BENCHCAL_CACHE", str(tmp_path / f"cache-{threads}"))
            ts.ensure_model("s1", MICRO)
            info = json.loads((ts.series_dir(MICRO) / "series.json").read_text())
            assert info["threads"] == ts.BUILD_THREADS == 1
            assert torch.get_num_threads() == threads  # the caller's setting is back
            digests.append([c["files"] for c in info["checkpoints"]])
    finally:
        torch.set_num_threads(before)
    assert digests[0] == digests[1]
    assert set(digests[0][0]) >= {"model.safetensors", "config.json", "tokenizer.json"}


def test_a_corrupt_checkpoint_is_refused_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCHCAL_CACHE", str(tmp_path))
    monkeypatch.setattr(ts, "_verified", set())
    path = ts.ensure_model("s2", MICRO)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(ts, "_verified", set())
    with pytest.raises(RuntimeError, match=r"s2 is corrupt: model\.safetensors has sha256"):
        ts.ensure_model("s2", MICRO)
    assert ts.ensure_model("s1", MICRO) == path.parent / "s1"  # the intact checkpoint still loads


def test_a_baked_series_is_used_without_any_environment_variable(tmp_path, monkeypatch) -> None:
    """The evaluator image bakes the series under sys.prefix; pods set no BENCHCAL_* variable."""
    monkeypatch.setattr(ts.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.delenv("BENCHCAL_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    baked = ts.baked_root() / MICRO.key()
    ts.build_series(MICRO, baked)
    assert ts.ensure_model("tiny-series/s1", MICRO) == baked / "s1"
    assert ts.series_dir(MICRO) == baked
    # the image bakes it as root and pods read it as 65532: world-readable, like every other file
    # (mkdtemp makes 0700 directories, safetensors writes 0600 files)
    for path in [baked, *baked.rglob("*")]:
        want = 0o005 if path.is_dir() else 0o004
        assert path.stat().st_mode & want == want, f"{path}: {oct(path.stat().st_mode)}"
    assert not (tmp_path / "home").exists(), "nothing is built or cached outside the baked copy"
