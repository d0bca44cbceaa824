"""Pure-torch versions of the fused LM-head scoring op (``kernels.lm_head_logprobs``).

``lm_head_logprobs(hidden, weight, targets)`` is the executable spec of the Triton kernel
(``kernels.triton_lm_head_logprobs``) and the CPU path: for each of N scored positions, the
log-probability of its target token and whether the target is the argmax. It materialises the
``[chunk, V]`` logits one chunk at a time (never ``[N, V]`` at once), in fp32.

``eager_lm_head_logprobs`` is the baseline the kernel is benchmarked against
(``benchmarks/bench_lm_head_logprobs.py``): what an evaluator does without the fused op, the
whole ``[N, V]`` logits in the input dtype, then an fp32 log-softmax.

Ties: the target counts as greedy iff its logit equals the row maximum (``>=``), i.e. every
maximiser is accepted. The Triton kernel follows the same rule, so both agree on exact ties.
"""

from __future__ import annotations

import torch


def apply_logit_transforms(
    logits: torch.Tensor, *, scale: float | None = None, softcap: float | None = None
) -> torch.Tensor:
    """Final-logit scaling then soft-capping (``softcap * tanh(x / softcap)``, as Gemma-2 does)."""
    if scale is not None:
        logits = logits * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return logits


def lm_head_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [N, C], weight [V, C], targets [N] (int) -> (logprob fp32 [N], is_argmax bool [N])."""
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"shapes: hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)} do not match"
        )
    if targets.shape != (hidden.shape[0],):
        raise ValueError(f"targets must have shape ({hidden.shape[0]},), got {tuple(targets.shape)}")
    n = hidden.shape[0]
    out_lp = torch.empty(n, dtype=torch.float32, device=hidden.device)
    out_greedy = torch.empty(n, dtype=torch.bool, device=hidden.device)
    w = weight.float()
    b = None if bias is None else bias.float()
    for start in range(0, n, chunk_size):
        h = hidden[start : start + chunk_size].float()
        logits = h @ w.T
        if b is not None:
            logits = logits + b
        logits = apply_logit_transforms(logits, scale=scale, softcap=softcap)
        t = targets[start : start + chunk_size].long()
        target_logit = logits.gather(1, t[:, None]).squeeze(1)
        out_lp[start : start + chunk_size] = target_logit - torch.logsumexp(logits, dim=1)
        out_greedy[start : start + chunk_size] = target_logit >= logits.max(dim=1).values
    return out_lp, out_greedy


def eager_lm_head_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The unfused baseline: ``log_softmax((hidden @ weight.T).float())`` gathered at the targets."""
    logits = hidden @ weight.T
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = logp.gather(1, targets[:, None]).squeeze(1)
    greedy = target >= logp.max(dim=-1).values
    return target, greedy
