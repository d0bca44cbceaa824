"""Batched greedy and seeded sampled generation on a tiny random Llama."""

from __future__ import annotations

import pytest

from benchcal_eval.engine import ScoringEngine
from benchcal_eval.requests import GenerationRequest as G
from tests.evaluator.engine.conftest import as_loaded, tiny_llama

EOS = 2  # LlamaConfig's default eos_token_id


class CharTokenizer:
    """Decodes id i as one letter; enough for generation, which only decodes."""

    eos_token_id = EOS
    pad_token_id = 0

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return "".join(chr(ord("a") + i % 26) for i in ids if not (skip_special_tokens and i == EOS))


@pytest.fixture(scope="module")
def engine():
    return ScoringEngine(as_loaded(tiny_llama(), tokenizer=CharTokenizer()))


CONTEXTS = [(5, 6, 7), (11, 12, 13, 14, 15, 16, 17, 18), (40,), (3, 9, 27, 81)]


def test_batched_greedy_equals_one_at_a_time(engine):
    requests = [G(c, max_new_tokens=6) for c in CONTEXTS]
    batched = engine.generate(requests)
    alone = [engine.generate([r])[0] for r in requests]
    assert batched == alone
    assert all(len(out) == 1 and len(out[0]) <= 6 for out in batched)
    assert any(len(out[0]) > 0 for out in batched)


def test_stop_string_cuts_the_continuation(engine):
    (full,) = engine.generate([G(CONTEXTS[1], max_new_tokens=8)])[0:1]
    text = full[0]
    assert len(text) >= 4, "the random model should not emit EOS this early"
    stop = text[2:4]
    (cut,) = engine.generate([G(CONTEXTS[1], max_new_tokens=8, stop=(stop,))])
    assert cut == [text[: text.find(stop)]]


def test_sampling_is_seeded_and_independent_of_batch_mates(engine):
    req = G(CONTEXTS[0], max_new_tokens=5, num_samples=3, temperature=1.0, seed=7)
    first = engine.generate([req])[0]
    again = engine.generate([G(CONTEXTS[2], max_new_tokens=4), req])[1]
    other_seed = engine.generate([G(CONTEXTS[0], max_new_tokens=5, num_samples=3, temperature=1.0, seed=8)])[
        0
    ]
    assert len(first) == 3
    assert first == again
    assert first != other_seed


def test_progress_counts_every_request(engine):
    seen = []
    engine.generate(
        [G(c, max_new_tokens=2) for c in CONTEXTS] + [G((1, 2), 2, num_samples=2, temperature=0.5)],
        progress=seen.append,
    )
    assert sum(seen) == len(CONTEXTS) + 1


def test_sampling_without_temperature_is_rejected(engine):
    with pytest.raises(ValueError, match="temperature"):
        engine.generate([G((1, 2), 2, num_samples=2)])
