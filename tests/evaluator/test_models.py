"""load_model: local dirs, GGUF, hub ids (offline), builtin delegation, dtype/device, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchcal.errors import BadInput
from benchcal_eval import models
from benchcal_eval.models import load_model, resolve_device, resolve_dtype
from tests.evaluator.engine.conftest import tiny_llama


def save_tiny_checkpoint(path: Path) -> Path:
    """A tiny random Llama with a word-level tokenizer, saved as a HF directory."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(101)}
    raw = Tokenizer(tok_models.WordLevel(vocab, unk_token="w0"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="w0", eos_token="w2")
    tiny_llama(max_positions=96).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


def test_local_directory_loads_with_identity_and_max_length(tiny_dir):
    lm = load_model(str(tiny_dir), dtype="auto", device="cpu")
    assert lm.dtype == torch.float32 and lm.device == torch.device("cpu")
    assert lm.max_length == 96
    assert not lm.model.training
    assert lm.identity["source"] == str(tiny_dir)
    assert len(lm.identity["content_sha256"]) == 64 and lm.identity["kind"] == "dir"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(lm.identity["files"])
    assert lm.key == {"content_sha256": lm.identity["content_sha256"], "dtype": "float32"}
    assert lm.identity["dtype"] == "float32" and lm.identity["device"] == "cpu"
    # the weights are the saved ones, not a fresh init
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, tiny_llama(max_positions=96)(ids).logits, atol=1e-6)
    assert lm.tokenizer("w7 w8")["input_ids"] == [7, 8]


def test_identity_changes_with_the_checkpoint(tiny_dir, tmp_path):
    other = save_tiny_checkpoint(tmp_path / "other")
    assert (
        models.resolve_model(str(other)).content_sha256 == models.resolve_model(str(tiny_dir)).content_sha256
    )
    cfg = (other / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 1')
    (other / "config.json").write_text(cfg)
    assert (
        models.resolve_model(str(other)).content_sha256 != models.resolve_model(str(tiny_dir)).content_sha256
    )


def test_bf16_on_request(tiny_dir):
    lm = load_model(str(tiny_dir), dtype="bf16", device="cpu")
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    assert lm.identity["dtype"] == "bfloat16"


def test_builtin_sources_delegate_to_the_tiny_series(monkeypatch, tiny_dir):
    import benchcal_eval.tiny_series as tiny_series

    asked = []
    monkeypatch.setattr(tiny_series, "ensure_model", lambda name: asked.append(name) or tiny_dir)
    lm = load_model("builtin:tiny-series/s2", device="cpu")
    assert asked == ["tiny-series/s2"]
    assert lm.identity["source"] == "builtin:tiny-series/s2" and lm.identity["kind"] == "builtin"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/nonexistent/model", "does not exist"),
        ("./relative/missing", "does not exist"),
        ("weights.gguf", "does not exist"),
    ],
)
def test_missing_paths_are_bad_input_without_a_hub_lookup(source, message):
    with pytest.raises(BadInput, match=message):
        load_model(source, device="cpu")


def test_wrong_kind_of_local_path(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(BadInput, match=r"not a \.gguf file"):
        load_model(str(tmp_path / "model.bin"), device="cpu")
    with pytest.raises(BadInput, match=r"no config\.json"):
        load_model(str(tmp_path), device="cpu")


def test_hub_id_missing_offline_is_bad_input(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(BadInput, match=r"benchcal-nobody/no-model' at revision 'v1'.*HF_HUB_OFFLINE"):
        load_model("benchcal-nobody/no-model", revision="v1", device="cpu")


def test_dtype_and_device_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("fp16", cpu) == torch.float16
    with pytest.raises(BadInput, match="--dtype 'float8'"):
        resolve_dtype("float8", cpu)
    assert resolve_device("cpu") == cpu
    with pytest.raises(BadInput, match="not a torch device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(BadInput, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.slow
def test_smollm2_gguf_loads_and_engine_matches_reference(smollm2_gguf):
    """The real SmolLM2-135M (GGUF Q4_1, dequantized to fp32): a handful of MC-style requests."""
    from benchcal_eval.engine import ScoringEngine, naive_score
    from benchcal_eval.requests import ScoreRequest

    path = smollm2_gguf
    lm = load_model(str(path), dtype="float32", device="cpu")
    from benchcal_eval.identity import file_sha256

    assert lm.identity["kind"] == "gguf" and lm.identity["content_sha256"] == file_sha256(path)
    assert lm.max_length == 8192
    tok = lm.tokenizer
    ctx = tuple(tok("Question: What is the capital of France?\nAnswer:")["input_ids"])
    conts = [" Paris", " London", " The city of Lyon", " Berlin, Germany"]
    requests = [ScoreRequest(ctx, tuple(tok(c)["input_ids"])) for c in conts]
    requests.append(ScoreRequest(tuple(tok("1, 2, 3, 4,")["input_ids"]), tuple(tok(" 5, 6")["input_ids"])))
    ours = ScoringEngine(lm, row_tokens=64).score(requests)
    ref = naive_score(lm.model, requests)
    # fp32 through 30 layers, packed rows vs one sequence per call: the summation order differs,
    # so the bound is per scored token (measured: at most 2.0e-5 per token on this machine).
    for a, b, r in zip(ours, ref, requests, strict=True):
        assert abs(a.logprob - b.logprob) <= 5e-5 * len(r.continuation), (r, a.logprob, b.logprob)
    assert [a.greedy for a in ours] == [b.greedy for b in ref]
    assert max(range(4), key=lambda i: ours[i].logprob) == 0  # " Paris"
