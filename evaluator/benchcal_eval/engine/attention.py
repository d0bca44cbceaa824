"""Tensors for one forward over a batch of packed rows: ids, positions, the tree mask, gathers.

The tree mask lives in exactly one place, ``build_attention_inputs``. Query ``q`` may attend key
``k`` iff both are in the same segment (group), ``k`` is not after ``q`` in the row, and ``k`` is
a context token or in the same branch as ``q``. Padding attends only to itself (so no softmax row
is empty) and is never gathered.

Attention seam: ``ATTENTION_BUILDERS`` maps an attention mode to a builder. "dense" gives a 4-D
*additive* float mask ``[rows, 1, T, T]`` (0 = attend, dtype-min = blocked). HF decoders take
such a mask unchanged for both the "sdpa" and "eager" implementations; a boolean mask would be
*added* as 0/1 by eager attention, so additive is the one encoding both accept. A FlexAttention
path (GPU) registers "flex" here from ``engine/flex_attention.py`` (imported on demand): same
signature, returning ``AttentionInputs`` whose ``attention_mask`` is a BlockMask built from the
same segment/branch ids; ``resolve_attention`` picks it for "auto" on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from benchcal_eval.engine.packing import CONTEXT, PAD, Row


@dataclass
class AttentionInputs:
    input_ids: torch.Tensor  # [rows, T] long
    position_ids: torch.Tensor  # [rows, T] long
    attention_mask: torch.Tensor  # [rows, 1, T, T] additive, model dtype
    score_index: torch.Tensor  # [N] long, flat index into rows*T of positions predicting targets
    targets: torch.Tensor  # [N] long
    owners: torch.Tensor  # [N] long, local branch slot 0..len(owner_ids)-1
    owner_ids: list[int]  # local slot -> global branch index
    n_tokens: int  # real (non-padding) tokens in the batch


def tree_mask(segment_ids: torch.Tensor, branch_ids: torch.Tensor) -> torch.Tensor:
    """[rows, T] segment/branch ids -> boolean [rows, T, T] (True = query may attend key)."""
    t = segment_ids.shape[1]
    seg_q, seg_k = segment_ids[:, :, None], segment_ids[:, None, :]
    br_q, br_k = branch_ids[:, :, None], branch_ids[:, None, :]
    causal = torch.ones(t, t, dtype=torch.bool, device=segment_ids.device).tril()
    allowed = (seg_q == seg_k) & (seg_q != PAD) & causal & ((br_k == CONTEXT) | (br_k == br_q))
    return allowed | torch.eye(t, dtype=torch.bool, device=segment_ids.device)


def build_attention_inputs(
    rows: Sequence[Row], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> AttentionInputs:
    """Right-pad the rows to the longest one and build the dense additive tree mask."""
    t = max(len(r) for r in rows)
    pad = [t - len(r) for r in rows]
    ids = [list(r.tokens) + [0] * p for r, p in zip(rows, pad, strict=True)]
    pos = [list(r.position_ids) + [0] * p for r, p in zip(rows, pad, strict=True)]
    seg = [list(r.segment_ids) + [PAD] * p for r, p in zip(rows, pad, strict=True)]
    br = [list(r.branch_ids) + [CONTEXT] * p for r, p in zip(rows, pad, strict=True)]
    score_index: list[int] = []
    targets: list[int] = []
    local: dict[int, int] = {}
    owners: list[int] = []
    for i, r in enumerate(rows):
        score_index.extend(i * t + p for p in r.score_positions)
        targets.extend(r.targets)
        owners.extend(local.setdefault(o, len(local)) for o in r.owners)

    def as_long(x: list) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.long, device=device)

    allowed = tree_mask(as_long(seg), as_long(br))
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return AttentionInputs(
        input_ids=as_long(ids),
        position_ids=as_long(pos),
        attention_mask=mask[:, None],
        score_index=as_long(score_index),
        targets=as_long(targets),
        owners=as_long(owners),
        owner_ids=list(local),
        n_tokens=sum(len(r) for r in rows),
    )


Builder = Callable[[Sequence[Row], "torch.device | str", torch.dtype], AttentionInputs]
ATTENTION_BUILDERS: dict[str, Builder] = {"dense": build_attention_inputs}


def resolve_attention(attention: str, device: torch.device) -> Builder:
    """Pick the mask builder: "auto" is "flex" on CUDA when FlexAttention imports, else "dense".

    A builder may carry an ``attn_implementation`` attribute (the HF attention implementation its
    mask is meant for); the engine switches the model to it while scoring.
    """
    if attention in ("auto", "flex") and "flex" not in ATTENTION_BUILDERS and device.type == "cuda":
        try:
            import benchcal_eval.engine.flex_attention
        except ImportError:
            if attention == "flex":
                raise
    if attention == "auto":
        attention = "flex" if device.type == "cuda" and "flex" in ATTENTION_BUILDERS else "dense"
    if attention == "flex" and "flex" not in ATTENTION_BUILDERS:
        import benchcal_eval.engine.flex_attention  # noqa: F401
    if attention not in ATTENTION_BUILDERS:
        raise ValueError(
            f"attention must be 'auto' or one of {sorted(ATTENTION_BUILDERS)}, got {attention!r}"
        )
    return ATTENTION_BUILDERS[attention]
