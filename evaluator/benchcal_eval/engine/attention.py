"""The tree attention rule, its dense mask, and the choice of attention path.

The tree rule: query ``q`` may attend key ``k`` iff both are in the same segment (group), ``k`` is
not after ``q`` in the row, and ``k`` is a context token or in the same branch as ``q``. Padding
attends only to itself (so no softmax row is empty) and is never gathered. ``tree_mask`` is its
one dense statement; ``flex_attention.tree_mask_mod`` states it for FlexAttention and is tested
equal to it.

Attention paths (``resolve_attention``): "dense" gives a 4-D *additive* float mask
``[rows, 1, T, T]`` (0 = attend, dtype-min = blocked). HF decoders take such a mask unchanged for
both the "sdpa" and "eager" implementations; a boolean mask would be *added* as 0/1 by eager
attention, so additive is the one encoding both accept. "flex" (GPU) is
``engine/flex_attention.py``, imported on demand: the same ``AttentionInputs`` (``engine.inputs``)
with a BlockMask; "auto" picks it on CUDA when FlexAttention imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from benchcal_eval.engine.inputs import AttentionInputs, assemble_inputs
from benchcal_eval.engine.packing import CONTEXT, PAD, Row

ATTENTION_MODES = ("auto", "dense", "flex")

Builder = Callable[[Sequence[Row], "torch.device | str", torch.dtype], AttentionInputs]


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

    def additive(segment_ids: torch.Tensor, branch_ids: torch.Tensor) -> torch.Tensor:
        allowed = tree_mask(segment_ids, branch_ids)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[:, None]

    return assemble_inputs(rows, max(len(r) for r in rows), device, additive)


def resolve_attention(attention: str, device: torch.device) -> Builder:
    """Pick the input builder: "auto" is "flex" on CUDA when FlexAttention imports, else "dense".

    A builder may carry an ``attn_implementation`` attribute (the HF attention implementation its
    mask is meant for); the engine switches the model to it while scoring.
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {list(ATTENTION_MODES)}, got {attention!r}")
    if attention == "dense" or (attention == "auto" and device.type != "cuda"):
        return build_attention_inputs
    try:
        from benchcal_eval.engine.flex_attention import build_flex_attention_inputs
    except ImportError:
        if attention == "flex":
            raise
        return build_attention_inputs
    return build_flex_attention_inputs
