"""FlexAttention path for tree-packed rows (CUDA): the tree mask as a BlockMask, never as [T, T].

The dense builder in ``engine.attention`` materialises an additive ``[rows, 1, T, T]`` mask, so
its memory and the attention work grow with T² whatever the tree looks like. Here the same rule
(see ``attention.tree_mask``) is a FlexAttention ``mask_mod`` over per-token segment and branch
ids; ``create_block_mask`` turns it into a block-sparse ``BlockMask`` whose fully masked
128 x 128 blocks (other trees of the row, sibling branches, the causal upper half) are skipped
by the fused kernel. HF decoders loaded with ``attn_implementation="flex_attention"`` take a 4-D
BlockMask as ``attention_mask`` unchanged.

``attention.resolve_attention`` imports this module for "flex" (and "auto" on CUDA); the builder
carries ``attn_implementation`` so the engine can switch the model's attention to match.
Rows are right-padded to a multiple of the block size (fewer distinct shapes to compile for) by
the shared ``inputs.assemble_inputs``; padding attends only to itself, exactly as in the dense
mask, and is never scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask

from benchcal_eval.engine.inputs import AttentionInputs, assemble_inputs
from benchcal_eval.engine.packing import CONTEXT, PAD, Row

__all__ = ["BLOCK_SIZE", "build_flex_attention_inputs", "tree_block_mask", "tree_mask_mod"]

BLOCK_SIZE = 128  # FlexAttention's default tile; the padded row length is a multiple of it

MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def tree_mask_mod(segment_ids: torch.Tensor, branch_ids: torch.Tensor) -> MaskMod:
    """[rows, T] segment/branch ids -> mask_mod(b, h, q, kv): True where ``q`` may attend ``kv``.

    Same rule as ``attention.tree_mask``: same tree (segment), not padding, causal, and the key
    is a context token or in the query's own branch; every token also sees itself.
    """

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        seg_q = segment_ids[b, q_idx]
        br_k = branch_ids[b, kv_idx]
        same_tree = (seg_q == segment_ids[b, kv_idx]) & (seg_q != PAD)
        visible = (br_k == CONTEXT) | (br_k == branch_ids[b, q_idx])
        return (same_tree & (kv_idx <= q_idx) & visible) | (q_idx == kv_idx)

    return mask_mod


def tree_block_mask(segment_ids: torch.Tensor, branch_ids: torch.Tensor) -> BlockMask:
    """BlockMask for [rows, T] ids (T a multiple of BLOCK_SIZE), shared by every head."""
    rows, t = segment_ids.shape
    return create_block_mask(
        tree_mask_mod(segment_ids, branch_ids),
        B=rows,
        H=None,
        Q_LEN=t,
        KV_LEN=t,
        device=segment_ids.device,
        BLOCK_SIZE=BLOCK_SIZE,
    )


def padded_length(rows: Sequence[Row]) -> int:
    longest = max(len(r) for r in rows)
    return -(-longest // BLOCK_SIZE) * BLOCK_SIZE


def build_flex_attention_inputs(
    rows: Sequence[Row], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> AttentionInputs:
    """Like ``attention.build_attention_inputs`` but with a BlockMask (``dtype`` is unused)."""
    del dtype  # a BlockMask has no value dtype; kept for the builder signature
    return assemble_inputs(rows, padded_length(rows), device, tree_block_mask)


# The HF attention implementation this builder's mask is meant for (read by the engine).
build_flex_attention_inputs.attn_implementation = "flex_attention"  # type: ignore[attr-defined]
