"""The tree attention rule, its dense mask, and the choice of attention path.

The tree mask lives in exactly one place, ``tree_mask``: query ``q`` may attend key ``k`` iff
``k <= q < ends[k]`` (``k`` is ``q`` or an ancestor of ``q`` in the row's trie pieces; see
``engine.packing``). Padding attends only to itself and is never gathered (``engine.inputs``).
``flex_attention.tree_mask_mod`` and ``tree_attention``'s chunk masks state the same rule and are
tested equal to it.

Attention paths (``resolve_attention``): "dense" gives a 4-D *additive* float mask
``[rows, 1, T, T]`` (0 = attend, dtype-min = blocked). HF decoders take such a mask unchanged for
both the "sdpa" and "eager" implementations; a boolean mask would be *added* as 0/1 by eager
attention, so additive is the one encoding both accept. "flex" (GPU) is
``engine/flex_attention.py`` and "tree" (CPU: chunked ancestor attention) is
``engine/tree_attention.py``, each imported on demand and returning the same ``AttentionInputs``
(``engine.inputs``); "auto" picks "flex" on CUDA and "tree" elsewhere when they import and the
model's attention allows it, else "dense".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchcal_eval.engine.inputs import AttentionInputs, assemble_inputs
from benchcal_eval.engine.packing import Row

ATTENTION_MODES = ("auto", "dense", "flex", "tree")

Builder = Callable[[Sequence[Row], "torch.device | str", torch.dtype], AttentionInputs]

# mode -> (module, builder name), imported on demand (flex needs a recent torch, tree transformers)
_PATHS = {
    "flex": ("benchcal_eval.engine.flex_attention", "build_flex_attention_inputs"),
    "tree": ("benchcal_eval.engine.tree_attention", "build_tree_attention_inputs"),
}


def tree_mask(ends: torch.Tensor) -> torch.Tensor:
    """[rows, T] subtree ends -> boolean [rows, T, T] (True = query may attend key)."""
    t = ends.shape[1]
    idx = torch.arange(t, device=ends.device)
    q, k = idx[:, None], idx[None, :]
    return (k <= q) & (q < ends[:, None, :])


def build_attention_inputs(
    rows: Sequence[Row], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> AttentionInputs:
    """Right-pad the rows to the longest one and build the dense additive tree mask."""
    inputs, ends = assemble_inputs(rows, max(len(r) for r in rows), device)
    allowed = tree_mask(torch.tensor(ends, dtype=torch.long, device=device))
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    inputs.attention_mask = mask[:, None]
    return inputs


def _import(mode: str) -> Builder:
    module, name = _PATHS[mode]
    return getattr(importlib.import_module(module), name)


def resolve_attention(attention: str, device: torch.device, config: Any = None) -> Builder:
    """Pick the input builder. "auto": "flex" on CUDA (block-sparse kernel), "tree" elsewhere
    (chunked gathers, see ``engine.tree_attention``) when the model's attention allows it, else
    "dense". An explicit "flex" or "tree" lets its ImportError show.

    A builder may carry an ``attn_implementation`` attribute (the HF attention implementation its
    mask is meant for); the engine switches the model to it while scoring.
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {list(ATTENTION_MODES)}, got {attention!r}")
    if attention == "dense":
        return build_attention_inputs
    if attention != "auto":
        return _import(attention)
    mode = "flex" if device.type == "cuda" else "tree"
    try:
        builder = _import(mode)
    except ImportError:
        return build_attention_inputs
    if mode == "tree" and config is not None and not _tree_supports(config):
        return build_attention_inputs
    return builder


def _tree_supports(config: Any) -> bool:
    from benchcal_eval.engine.tree_attention import supports

    return supports(config)
