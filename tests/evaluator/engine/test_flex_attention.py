"""The FlexAttention tree mask against the dense one, and the flex engine path against the dense path."""

from __future__ import annotations

import pytest
import torch

flex = pytest.importorskip("benchcal_eval.engine.flex_attention")

from torch.nn.attention.flex_attention import create_mask  # noqa: E402

from benchcal_eval.engine.attention import (  # noqa: E402
    build_attention_inputs,
    resolve_attention,
    tree_mask,
)
from benchcal_eval.engine.packing import pack_requests  # noqa: E402
from benchcal_eval.requests import ScoreRequest as R  # noqa: E402


def tree_rows():
    """Two rows of different lengths: shared contexts with multi- and single-token branches."""
    reqs = [
        R((1, 2, 3, 4), (10, 11, 12)), R((1, 2, 3, 4), (20,)), R((1, 2, 3, 4), (30, 31)),
        R((7, 8), (9, 9, 9, 9)), R((7, 8), (5, 6)),
        R(tuple(range(40, 60)), (1, 2)),
    ]  # fmt: skip
    packing = pack_requests(reqs, row_tokens=24, token_budget=10_000)
    (batch,) = packing.batches
    assert len(batch) == 2 and len(batch[0]) != len(batch[1])
    return reqs, batch


def test_mask_mod_equals_dense_tree_mask_including_padding():
    _, rows = tree_rows()
    inputs = flex.build_flex_attention_inputs(rows, "cpu")
    t = inputs.input_ids.shape[1]
    assert t % flex.BLOCK_SIZE == 0 and t >= max(len(r) for r in rows)
    seg = torch.full((len(rows), t), -1, dtype=torch.long)
    br = torch.full((len(rows), t), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        seg[i, : len(r)] = torch.tensor(r.segment_ids)
        br[i, : len(r)] = torch.tensor(r.branch_ids)
    dense = tree_mask(seg, br)
    from_mod = create_mask(flex.tree_mask_mod(seg, br), len(rows), 1, t, t, device="cpu")[:, 0]
    assert torch.equal(from_mod, dense)
    assert isinstance(inputs.attention_mask, torch.nn.attention.flex_attention.BlockMask)
    assert inputs.attention_mask.shape[-2:] == (t, t)


def test_flex_inputs_gather_the_same_positions_as_dense():
    _, rows = tree_rows()
    dense = build_attention_inputs(rows, "cpu")
    sparse = flex.build_flex_attention_inputs(rows, "cpu")
    td, tf = dense.input_ids.shape[1], sparse.input_ids.shape[1]
    # same (row, position) for every scored target, in the same order, with the same owners
    assert torch.equal(dense.score_index // td, sparse.score_index // tf)
    assert torch.equal(dense.score_index % td, sparse.score_index % tf)
    assert torch.equal(dense.targets, sparse.targets) and torch.equal(dense.owners, sparse.owners)
    assert dense.owner_ids == sparse.owner_ids and dense.n_tokens == sparse.n_tokens
    assert torch.equal(sparse.input_ids[:, :td], dense.input_ids)
    assert torch.equal(sparse.position_ids[:, :td], dense.position_ids)


def test_flex_builder_is_resolved_and_auto_stays_dense_on_cpu():
    assert resolve_attention("flex", torch.device("cpu")) is flex.build_flex_attention_inputs
    assert resolve_attention("auto", torch.device("cpu")) is build_attention_inputs
    assert resolve_attention("dense", torch.device("cuda")) is build_attention_inputs
    with pytest.raises(ValueError, match="attention must be one of"):
        resolve_attention("sparse", torch.device("cpu"))


def tiny_llama(device: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchcal_eval.models import LoadedModel

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    )  # fmt: skip
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()
    return LoadedModel(model=model, tokenizer=None, device=torch.device(device), dtype=dtype, max_length=2048)


def score_both_paths(device: str, questions: int, max_context: int):
    from benchcal_eval.engine import ScoringEngine

    g = torch.Generator().manual_seed(1)
    reqs = []
    for q in range(questions):  # shared contexts of varied length, 2-4 choices of 1-6 tokens
        n_ctx = int(torch.randint(5, max_context, (1,), generator=g))
        ctx = tuple(torch.randint(1, 512, (n_ctx,), generator=g).tolist())
        for _ in range(2 + q % 3):
            n = int(torch.randint(1, 7, (1,), generator=g))
            reqs.append(R(ctx, tuple(torch.randint(1, 512, (n,), generator=g).tolist())))
    results = {}
    for attention in ("dense", "flex"):
        lm = tiny_llama(device, torch.float32)
        engine = ScoringEngine(lm, attention=attention, token_budget=4096, row_tokens=1024)
        results[attention] = engine.score(reqs)
    dense, sparse = results["dense"], results["flex"]
    worst = max(abs(a.logprob - b.logprob) for a, b in zip(dense, sparse, strict=True))
    assert worst < 1e-3, f"flex vs dense: max |delta logprob| {worst:.3g}"
    assert [a.n_tokens for a in dense] == [b.n_tokens for b in sparse]
    agree = sum(a.greedy == b.greedy for a, b in zip(dense, sparse, strict=True))
    assert agree >= len(reqs) - 1


@pytest.mark.gpu
def test_flex_engine_path_matches_dense_path_on_gpu():
    score_both_paths("cuda", questions=24, max_context=300)


@pytest.mark.slow
def test_flex_engine_path_matches_dense_path_on_cpu():
    # torch.compile builds the CPU FlexAttention kernel first: ~10-40 s on 2 cores
    score_both_paths("cpu", questions=6, max_context=100)
