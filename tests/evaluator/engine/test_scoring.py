"""Trie scoring vs the one-at-a-time full-forward reference on tiny random decoders, and the
engine's cost claims: LM head only at scoring positions, one readback per batch, no [B, T, V]."""

from __future__ import annotations

import random

import pytest
import torch

from benchcal_eval.engine import ScoringEngine, naive_score
from benchcal_eval.engine.scoring import head_spec
from benchcal_eval.requests import ScoreRequest
from tests.evaluator.engine.conftest import (
    VOCAB,
    as_loaded,
    random_requests,
    random_shared_requests,
    tiny_llama,
)

ATOL = 1e-5  # fp32; the reference takes an fp64 log-softmax over its own fp32 logits
BUDGETS = [(4096, 512), (64, 48), (24, 12)]  # many pieces per row / a few / every tree cut


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


@pytest.mark.parametrize("attention", ["dense", "tree"])
@pytest.mark.parametrize(("token_budget", "row_tokens"), BUDGETS, ids=["many-per-row", "few-per-row", "cut"])
def test_engine_matches_naive_reference(llama, token_budget, row_tokens, attention):
    requests = random_requests(seed=1) + random_shared_requests(seed=1, vocab=VOCAB)
    ref = naive_score(llama, requests)
    engine = ScoringEngine(
        as_loaded(llama), token_budget=token_budget, row_tokens=row_tokens, attention=attention
    )
    assert_same(engine.score(requests), ref)


def test_results_do_not_depend_on_token_budget_or_row_length(llama):
    requests = random_shared_requests(seed=7, questions=10, vocab=VOCAB)
    runs = [ScoringEngine(as_loaded(llama), token_budget=b, row_tokens=r).score(requests) for b, r in BUDGETS]
    computed = []
    for b, r in BUDGETS:
        engine = ScoringEngine(as_loaded(llama), token_budget=b, row_tokens=r)
        engine.score(requests)
        computed.append(engine.stats.computed_tokens)
    assert len(set(computed)) > 1, "the budgets must actually pack differently"
    for other in runs[1:]:
        assert [a.greedy for a in other] == [a.greedy for a in runs[0]]
        assert max(abs(a.logprob - b.logprob) for a, b in zip(other, runs[0], strict=True)) < ATOL


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
    assert s.extra["trie_tokens"] <= s.computed_tokens
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


# ---- groups and early results ------------------------------------------------------------------


def test_score_groups_reports_each_group_when_its_last_request_is_scored(llama):
    a = random_shared_requests(seed=11, questions=4, vocab=VOCAB)
    b = [ScoreRequest((3, *r.context), r.continuation) for r in a]  # no prefix shared with a
    groups = [a, [], b]
    events = []
    engine = ScoringEngine(as_loaded(llama), token_budget=48, row_tokens=48)
    out = engine.score_groups(
        groups, progress=lambda n: events.append(("batch", n)), on_done=lambda g, res: events.append((g, res))
    )
    assert [e[0] for e in events if e[0] != "batch"] == [1, 0, 2]  # the empty group at once
    done = {e[0]: e[1] for e in events if e[0] != "batch"}
    for g, reqs in enumerate(groups):
        assert done[g] == out[g] and len(out[g]) == len(reqs)
        if reqs:
            assert_same(out[g], naive_score(llama, reqs))
    batches = [i for i, e in enumerate(events) if e[0] == "batch"]
    assert events.index((0, done[0])) < batches[-1], "group 0 finished before group 2's batches ran"
    assert sum(e[1] for e in events if e[0] == "batch") == len(a) + len(b)


def test_prefixes_shared_across_groups_are_computed_once(llama):
    requests = random_shared_requests(seed=12, questions=6, vocab=VOCAB)
    by_shots: dict[int, list[ScoreRequest]] = {}
    for r in requests:
        by_shots.setdefault(len(r.context), []).append(r)
    groups = list(by_shots.values())
    together = ScoringEngine(as_loaded(llama), token_budget=4096, row_tokens=4096)
    results = together.score_groups(groups)
    apart = 0
    for g, reqs in enumerate(groups):
        alone = ScoringEngine(as_loaded(llama), token_budget=4096, row_tokens=4096)
        assert_same(alone.score(reqs), results[g])
        apart += alone.stats.computed_tokens
    assert together.stats.computed_tokens < apart


# ---- cost claims ---------------------------------------------------------------------------------


def distinct_scored_positions(requests):
    """(model-input prefix, target) pairs: what the LM head must score, each once."""
    return {(r.context + r.continuation[:j], t) for r in requests for j, t in enumerate(r.continuation)}


def test_lm_head_runs_only_at_scoring_positions(llama, monkeypatch):
    import benchcal_eval.engine.scoring as scoring

    rows = []
    real = scoring.lm_head_logprobs

    def counting(hidden, *args, **kwargs):
        rows.append(hidden.shape[0])
        return real(hidden, *args, **kwargs)

    def never(*args, **kwargs):
        raise AssertionError("the model's own LM head ran (full-vocabulary logits at every position)")

    monkeypatch.setattr(scoring, "lm_head_logprobs", counting)
    monkeypatch.setattr(llama.lm_head, "forward", never)
    requests = random_shared_requests(seed=13, vocab=VOCAB)
    engine = ScoringEngine(as_loaded(llama), token_budget=64, row_tokens=64)
    engine.score(requests)
    assert sum(rows) == len(distinct_scored_positions(requests)) == engine.stats.extra["scored_positions"]
    assert len(rows) == engine.stats.batches
    assert sum(rows) < engine.stats.computed_tokens


def test_one_device_to_host_readback_per_batch(llama, monkeypatch):
    counts: dict[str, int] = {}

    def counted(name):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return real(self, *args, **kwargs)

        return wrapper

    engine = ScoringEngine(as_loaded(llama), token_budget=64, row_tokens=64)
    requests = random_shared_requests(seed=14, vocab=VOCAB)
    engine.score(requests[:3])  # warm (first-call paths)
    names = ("tolist", "item", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
    for name in names:
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    engine.stats = type(engine.stats)()
    engine.score(requests)
    monkeypatch.undo()
    assert engine.stats.batches > 3
    assert counts == {"tolist": engine.stats.batches}, counts


def test_no_batch_by_time_by_vocab_tensor():
    """A 50k vocabulary makes [tokens, V] large: the largest tensor any op produces stays near
    [scored positions, V] for us, while the full HF forward (the reference) makes [T, V]."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from transformers import LlamaConfig, LlamaForCausalLM

    class Largest(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.numel = max(self.numel, t.numel())
            return out

    vocab = 50_000
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    rng = random.Random(15)
    requests = []
    for _ in range(6):  # MC-like: long contexts, four short choices
        ctx = tuple(rng.randrange(vocab) for _ in range(rng.randint(60, 120)))
        requests += [
            ScoreRequest(ctx, tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 2)))) for _ in range(4)
        ]
    engine = ScoringEngine(as_loaded(model, max_length=512), token_budget=512, row_tokens=512)
    engine.score(requests[:2])
    engine.stats = type(engine.stats)()
    with Largest() as ours:
        engine.score(requests)
    scored = engine.stats.extra["scored_positions"]
    tokens = engine.stats.computed_tokens
    assert scored * 4 < tokens  # so [scored, V] and [tokens, V] are far apart
    assert ours.numel <= scored * vocab, (ours.numel, scored * vocab)
    longest = max(requests, key=lambda r: len(r.context) + len(r.continuation))
    with Largest() as ref:
        naive_score(model, [longest])
    assert ref.numel >= (len(longest.context) + len(longest.continuation) - 1) * vocab  # the check has teeth
