"""Tiny random decoders built from configs (seeded, fp32, CPU) and random score requests."""

from __future__ import annotations

import random

import pytest
import torch

from benchcal_eval.models import LoadedModel
from benchcal_eval.requests import ScoreRequest

VOCAB = 101


def tiny_llama(attn: str = "sdpa", max_positions: int = 128):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
        attn_implementation=attn,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def as_loaded(model, max_length: int = 128, tokenizer=None) -> LoadedModel:
    return LoadedModel(model, tokenizer, torch.device("cpu"), torch.float32, max_length, {"source": "test"})


def random_requests(seed: int = 0, questions: int = 12, vocab: int = VOCAB) -> list[ScoreRequest]:
    """MC-like: each question has one context and 1-5 choices of 1-6 tokens (duplicates included)."""
    rng = random.Random(seed)
    requests = []
    for _ in range(questions):
        context = tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 30)))
        for _ in range(rng.randint(1, 5)):
            requests.append(
                ScoreRequest(context, tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 6))))
            )
    requests.append(requests[0])  # an exact duplicate
    return requests


def random_shared_requests(seed: int, questions: int = 8, vocab: int = 50) -> list[ScoreRequest]:
    """Few-shot-sweep-like: per question nested shot prefixes (0, 1, 3, 6 of 20 shot texts in a
    random order), each with 1-4 continuations of 1-5 tokens, so paths share prefixes at several
    depths, across questions (the same shot first) and within them."""
    rng = random.Random(seed)
    shots = [tuple(rng.randrange(vocab) for _ in range(rng.randint(3, 12))) for _ in range(20)]
    reqs = []
    for _ in range(questions):
        order = rng.sample(range(20), 6)
        question = tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 6)))
        for k in (0, 1, 3, 6):
            ctx = sum((shots[j] for j in order[:k]), ()) + question
            for _ in range(rng.randint(1, 4)):
                reqs.append(ScoreRequest(ctx, tuple(rng.randrange(vocab) for _ in range(rng.randint(1, 5)))))
    reqs.append(reqs[0])  # an exact duplicate
    return reqs


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()
