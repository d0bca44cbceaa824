"""Packed tree scoring vs the one-at-a-time full-forward reference on tiny random decoders."""

from __future__ import annotations

import random

import pytest
import torch

from benchcal_eval.engine import ScoringEngine, naive_score
from benchcal_eval.engine.scoring import head_spec
from benchcal_eval.requests import ScoreRequest
from tests.evaluator.engine.conftest import VOCAB, as_loaded, random_requests, tiny_llama

ATOL = 1e-4


def assert_same(ours, ref, atol=ATOL):
    assert len(ours) == len(ref)
    worst = max(abs(a.logprob - b.logprob) for a, b in zip(ours, ref, strict=True))
    assert worst < atol, f"max |dlogprob| {worst:.2e}"
    assert [a.greedy for a in ours] == [b.greedy for b in ref]
    assert [a.n_tokens for a in ours] == [b.n_tokens for b in ref]


def chosen(results, sizes):
    out, i = [], 0
    for k in sizes:
        scores = [r.logprob for r in results[i : i + k]]
        out.append(scores.index(max(scores)))
        i += k
    return out


@pytest.mark.parametrize(
    ("token_budget", "row_tokens"),
    [(4096, 512), (64, 48), (24, 12)],  # many trees per row / a few / every group oversize or split
    ids=["many-per-row", "few-per-row", "oversize"],
)
def test_engine_matches_naive_reference(llama, token_budget, row_tokens):
    requests = random_requests(seed=1)
    ref = naive_score(llama, requests)
    engine = ScoringEngine(as_loaded(llama), token_budget=token_budget, row_tokens=row_tokens)
    assert_same(engine.score(requests), ref)


def test_some_greedy_flags_are_true_so_the_flag_comparison_means_something(llama):
    # continuation = the model's own argmax after the context -> greedy by construction
    context = (5, 17, 42)
    with torch.no_grad():
        top = int(llama(torch.tensor([context])).logits[0, -1].argmax())
    requests = [ScoreRequest(context, (top,)), ScoreRequest(context, ((top + 1) % VOCAB,))]
    results = ScoringEngine(as_loaded(llama)).score(requests)
    assert [r.greedy for r in results] == [True, False]
    assert_same(results, naive_score(llama, requests))


def test_eager_attention_takes_the_same_additive_mask():
    model = tiny_llama(attn="eager")
    requests = random_requests(seed=2, questions=6)
    assert_same(ScoringEngine(as_loaded(model), row_tokens=64).score(requests), naive_score(model, requests))


def test_results_do_not_depend_on_order_or_packing(llama):
    requests = random_requests(seed=3)
    order = list(range(len(requests)))
    random.Random(0).shuffle(order)
    a = ScoringEngine(as_loaded(llama), token_budget=4096, row_tokens=512).score(requests)
    b = ScoringEngine(as_loaded(llama), token_budget=32, row_tokens=32).score([requests[i] for i in order])
    for pos, i in enumerate(order):
        assert abs(a[i].logprob - b[pos].logprob) < ATOL
        assert a[i].greedy == b[pos].greedy


def test_mc_choices_identical_to_reference(llama):
    rng = random.Random(4)
    requests, sizes = [], []
    for _ in range(10):
        ctx = tuple(rng.randrange(VOCAB) for _ in range(rng.randint(5, 25)))
        k = rng.randint(2, 4)
        sizes.append(k)
        requests += [
            ScoreRequest(ctx, tuple(rng.randrange(VOCAB) for _ in range(rng.randint(1, 5)))) for _ in range(k)
        ]
    ours = ScoringEngine(as_loaded(llama), row_tokens=40).score(requests)
    assert chosen(ours, sizes) == chosen(naive_score(llama, requests), sizes)


def test_truncation_matches_reference_truncation(llama):
    long_ctx = tuple(range(1, 60))
    requests = [ScoreRequest(long_ctx, (3, 4, 5)), ScoreRequest(long_ctx, (7,)), ScoreRequest((9, 9), (1, 2))]
    engine = ScoringEngine(as_loaded(llama, max_length=20))
    assert_same(engine.score(requests), naive_score(llama, requests, max_length=20))
    assert engine.stats.extra["truncated_requests"] == 2


def test_stats_and_progress_account_for_every_request(llama):
    requests = random_requests(seed=5)
    seen = []
    engine = ScoringEngine(as_loaded(llama), token_budget=64, row_tokens=32)
    engine.score(requests, progress=seen.append)
    s = engine.stats
    assert sum(seen) == len(requests) == s.requests
    assert s.batches == len(seen) and s.rows >= s.batches
    assert s.request_tokens == sum(len(r.context) + len(r.continuation) for r in requests)
    assert 0 < s.computed_tokens < s.request_tokens  # shared contexts are computed once
    assert s.seconds > 0


def test_softcap_and_scale_from_config_match_the_hf_forward():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=128, final_logit_softcapping=2.0,
        attn_logit_softcapping=None, sliding_window=64, attn_implementation="eager",
    )  # fmt: skip
    model = Gemma2ForCausalLM(config).eval()
    assert head_spec(model).softcap == 2.0
    requests = random_requests(seed=6, questions=6)
    assert_same(ScoringEngine(as_loaded(model), row_tokens=64).score(requests), naive_score(model, requests))
