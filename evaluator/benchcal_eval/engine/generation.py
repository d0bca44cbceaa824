"""Generation for generation_task_with_answers (greedy) and code_evaluation (sampled, pass@k).

Greedy requests are batched with left padding (HF ``generate`` derives position ids from the
attention mask), sorted by context length so little padding is wasted, and stop early once
every sequence has produced one of its stop strings. Sampled requests (``num_samples > 1``) run
one request at a time with ``num_return_sequences`` under a forked RNG seeded from the request,
so each request's samples depend only on its own seed, never on what it was batched with.
Returned text is the decoded continuation only, cut at the first stop string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchcal_eval.metrics import cut_at_stop
from benchcal_eval.requests import GenerationRequest


def _special_ids(tokenizer: Any, model: Any) -> tuple[int, list[int]]:
    eos = tokenizer.eos_token_id if tokenizer is not None else None
    if eos is None:
        eos = getattr(model.generation_config, "eos_token_id", None)
    eos_ids = [] if eos is None else list(eos) if isinstance(eos, list | tuple) else [eos]
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = pad if pad is not None else (eos_ids[0] if eos_ids else 0)
    return pad, eos_ids


class _StopStrings:
    """Per-sequence stopping: True once the decoded new text holds a stop string (HF StoppingCriteria)."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: Sequence[Sequence[str]]) -> None:
        self.tokenizer, self.prompt_len, self.stops = tokenizer, prompt_len, stops

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        done = []
        for seq, stop in zip(input_ids[:, self.prompt_len :].tolist(), self.stops, strict=True):
            text = self.tokenizer.decode(seq, skip_special_tokens=True) if stop else ""
            done.append(any(s and s in text for s in stop))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _run_generate(lm: Any, contexts: list[tuple[int, ...]], req: GenerationRequest, stops, *,
                  num_return: int, sample: bool) -> list[list[int]]:  # fmt: skip
    """Left-pad ``contexts`` and call HF generate; returns the new token ids of every sequence."""
    pad, eos_ids = _special_ids(lm.tokenizer, lm.model)
    width = max(len(c) for c in contexts)
    ids = torch.tensor([[pad] * (width - len(c)) + list(c) for c in contexts], device=lm.device)
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=lm.device)
    criteria = []
    if any(stops) and lm.tokenizer is not None:
        from transformers import StoppingCriteriaList

        per_seq = [s for s in stops for _ in range(num_return)]
        criteria = StoppingCriteriaList([_StopStrings(lm.tokenizer, width, per_seq)])
    sampling: dict[str, Any] = {"do_sample": False}
    if sample:
        sampling = {"do_sample": True, "temperature": req.temperature, "top_k": 0, "top_p": 1.0}
    out = lm.model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=req.max_new_tokens,
        num_return_sequences=num_return,
        pad_token_id=pad,
        eos_token_id=eos_ids or None,
        stopping_criteria=criteria or None,
        **sampling,
    )
    new = out[:, width:].tolist()
    return [_until_eos(seq, eos_ids) for seq in new]


def _until_eos(seq: list[int], eos_ids: list[int]) -> list[int]:
    for i, t in enumerate(seq):
        if t in eos_ids:
            return seq[:i]
    return seq


def _fit_context(req: GenerationRequest, max_length: int) -> tuple[int, ...]:
    keep = max(1, max_length - req.max_new_tokens)
    return req.context[-keep:]


def _decode(lm: Any, seq: list[int], stop: Sequence[str]) -> str:
    return cut_at_stop(lm.tokenizer.decode(seq, skip_special_tokens=True), stop)


@torch.inference_mode()
def generate(
    lm: Any,
    requests: Sequence[GenerationRequest],
    *,
    token_budget: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``num_samples`` strings per request, in request order."""
    for i, req in enumerate(requests):
        if not req.context:
            raise ValueError(f"generation request #{i} has an empty context")
        if req.num_samples > 1 and req.temperature <= 0:
            raise ValueError(f"generation request #{i}: num_samples > 1 needs temperature > 0")
    results: list[list[str]] = [[] for _ in requests]
    greedy = sorted(
        (i for i, r in enumerate(requests) if r.num_samples == 1), key=lambda i: -len(requests[i].context)
    )
    # batch greedy requests that share max_new_tokens, within the token budget
    while greedy:
        first = requests[greedy[0]]
        width = len(_fit_context(first, lm.max_length)) + first.max_new_tokens
        batch = [i for i in greedy if requests[i].max_new_tokens == first.max_new_tokens]
        batch = batch[: max(1, token_budget // width)]
        contexts = [_fit_context(requests[i], lm.max_length) for i in batch]
        stops = [requests[i].stop for i in batch]
        for i, seq in zip(
            batch, _run_generate(lm, contexts, first, stops, num_return=1, sample=False), strict=True
        ):
            results[i] = [_decode(lm, seq, requests[i].stop)]
        taken = set(batch)
        greedy = [i for i in greedy if i not in taken]
        if progress is not None:
            progress(len(batch))
    for i, req in enumerate(requests):
        if req.num_samples == 1:
            continue
        devices = [lm.device] if torch.device(lm.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(req.seed)
            seqs = _run_generate(
                lm,
                [_fit_context(req, lm.max_length)],
                req,
                [req.stop],
                num_return=req.num_samples,
                sample=True,
            )
        results[i] = [_decode(lm, seq, req.stop) for seq in seqs]
        if progress is not None:
            progress(1)
    return results
