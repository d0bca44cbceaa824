"""One-request-at-a-time reference scorer: the executable spec the packed engine is tested against.

Each request runs alone through the full HF forward (its own LM head, logit transforms and
default causal mask), with the same lm-eval truncation rule, and is scored with an fp64
log-softmax over the whole vocabulary: an fp32 one over a 49k vocabulary drifts by ~1e-5 per
token (6.5e-4 on a 36-token SmolLM2 continuation), which would swamp the comparison. Slow on
purpose: no packing, no sharing, no gathering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from benchcal_eval.engine.packing import effective_context
from benchcal_eval.requests import ScoreRequest, ScoreResult


@torch.inference_mode()
def naive_score(
    model: Any, requests: Sequence[ScoreRequest], max_length: int | None = None
) -> list[ScoreResult]:
    device = next(model.parameters()).device
    results = []
    for i, req in enumerate(requests):
        context, _ = effective_context(req, i, max_length)
        ids = torch.tensor([list(context) + list(req.continuation[:-1])], device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0, len(context) - 1 :].double()
        targets = torch.tensor(req.continuation, device=device)
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1)
        # greedy iff every target logit ties the row maximum (the kernels' tie rule)
        target_logits = logits.gather(1, targets[:, None]).squeeze(1)
        greedy = bool((target_logits >= logits.max(dim=1).values).all())
        results.append(ScoreResult(logprob=float(logprobs.sum()), n_tokens=len(targets), greedy=greedy))
    return results
