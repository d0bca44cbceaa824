"""Chunked tree attention: the gathered keys cover every visible key, outputs equal masked SDPA."""

from __future__ import annotations

import pytest
import torch

from benchcal_eval.engine import tree_attention as ta
from benchcal_eval.engine.attention import resolve_attention, tree_mask
from benchcal_eval.engine.packing import pack_requests
from tests.evaluator.engine.conftest import random_shared_requests


def padded_ends(rows, t):
    return [[*r.ends, *range(len(r) + 1, t + 1)] for r in rows]


@pytest.fixture(scope="module")
def batch():
    # long rows (several chunks each) holding deep trees
    packing = pack_requests(random_shared_requests(seed=21, questions=30), row_tokens=700, token_budget=1400)
    rows = list(packing.batches[0])
    t = -(-max(len(r) for r in rows) // ta.CHUNK) * ta.CHUNK
    assert t >= 3 * ta.CHUNK
    return rows, t


def test_chunk_keys_hold_every_key_a_chunk_query_may_see(batch):
    rows, t = batch
    for ends in padded_ends(rows, t):
        allowed = tree_mask(torch.tensor([ends]))[0]
        for c, keys in enumerate(ta._chunk_keys(ends, t)):
            a = c * ta.CHUNK
            needed = set(allowed[a : a + ta.CHUNK].nonzero()[:, 1].tolist())
            assert needed <= set(keys), f"chunk {c} misses keys"
            assert len(keys) == len(set(keys)) and max(keys) < a + ta.CHUNK
            earlier = {k for k in keys if k < a}
            assert earlier == {k for k in range(a) if ends[k] > a}  # exactly the ancestors of its start


def test_tree_attention_equals_masked_sdpa(batch):
    rows, t = batch
    ends = padded_ends(rows, t)
    plan = ta.tree_plan(ends, "cpu", torch.float32)
    g = torch.Generator().manual_seed(0)
    b, h, h_kv, d = len(rows), 4, 2, 8
    q = torch.randn(b, h, t, d, generator=g)
    k = torch.randn(b, h_kv, t, d, generator=g)
    v = torch.randn(b, h_kv, t, d, generator=g)
    out, _ = ta.tree_attention_forward(None, q, k, v, None, scaling=0.3, benchcal_tree=plan)
    mask = torch.zeros(b, 1, t, t).masked_fill_(
        ~tree_mask(torch.tensor(ends))[:, None], torch.finfo(torch.float32).min
    )
    want = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=0.3, enable_gqa=True
    )
    assert out.shape == (b, t, h, d)
    assert torch.allclose(out, want.transpose(1, 2), atol=1e-5)
    # fewer keys than the dense T x T: the point of it
    gathered = sum(grp.mask.shape[0] * grp.mask.shape[-1] for grp in plan.groups) * ta.CHUNK
    assert gathered < b * t * t


def test_an_unpadded_batch_is_padded_only_inside_attention():
    # one row whose length is not a multiple of CHUNK: the model runs it unpadded
    packing = pack_requests(
        random_shared_requests(seed=4, questions=12), row_tokens=300, token_budget=700, flat=True
    )
    (row,) = max(packing.batches, key=lambda b: len(b[0]))
    n = len(row)
    assert n % ta.CHUNK and n > ta.CHUNK
    inputs = ta.build_tree_attention_inputs([row], "cpu", torch.float32)
    assert inputs.input_ids.shape == (1, n) and inputs.n_tokens == n
    plan = inputs.model_kwargs["benchcal_tree"]
    assert plan.length == -(-n // ta.CHUNK) * ta.CHUNK
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 4, n, 8, generator=g)
    k = torch.randn(1, 2, n, 8, generator=g)
    v = torch.randn(1, 2, n, 8, generator=g)
    out, _ = ta.tree_attention_forward(None, q, k, v, None, scaling=0.3, benchcal_tree=plan)
    mask = torch.zeros(1, 1, n, n).masked_fill_(
        ~tree_mask(torch.tensor([row.ends]))[:, None], torch.finfo(torch.float32).min
    )
    want = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, scale=0.3, enable_gqa=True
    )
    assert out.shape == (1, n, 4, 8)
    assert torch.allclose(out, want.transpose(1, 2), atol=1e-5)


def test_only_the_tree_path_asks_for_flat_packing():
    from transformers import LlamaConfig

    cpu = torch.device("cpu")
    assert getattr(resolve_attention("tree", cpu, LlamaConfig()), "flat_rows", False)
    assert not getattr(resolve_attention("dense", cpu, LlamaConfig()), "flat_rows", False)


def test_unsupported_attention_variants_keep_the_dense_mask():
    from transformers import Gemma2Config, LlamaConfig, MistralConfig

    assert ta.supports(LlamaConfig())
    assert not ta.supports(Gemma2Config(attn_logit_softcapping=50.0))
    assert not ta.supports(MistralConfig(sliding_window=64))
    cpu = torch.device("cpu")
    assert resolve_attention("auto", cpu, LlamaConfig()) is ta.build_tree_attention_inputs
    assert resolve_attention("auto", cpu, Gemma2Config()).__name__ == "build_attention_inputs"
    with pytest.raises(ValueError, match="soft-capping"):
        ta.tree_attention_forward(
            None,
            *[torch.zeros(1, 1, ta.CHUNK, 2)] * 3,
            None,
            benchcal_tree=ta.TreePlan([], ta.CHUNK),
            softcap=1.0,
        )
