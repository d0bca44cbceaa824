"""Tensors for one forward over a batch of packed rows: ids, positions, the tree mask, gathers.

The tree mask lives in exactly one place, ``tree_mask``: query ``q`` may attend key ``k`` iff
``k <= q < ends[k]`` (``k`` is ``q`` or an ancestor of ``q`` in the row's trie pieces; see
``engine.packing``). Padding gets ``ends = own index + 1``, so it attends only to itself (no softmax
row is empty) and nothing attends to it; it is never gathered.

Attention seam: ``ATTENTION_BUILDERS`` maps an attention mode to a builder. "dense" gives a 4-D
*additive* float mask ``[rows, 1, T, T]`` (0 = attend, dtype-min = blocked). HF decoders take
such a mask unchanged for both the "sdpa" and "eager" implementations; a boolean mask would be
*added* as 0/1 by eager attention, so additive is the one encoding both accept. A FlexAttention
path (GPU) registers "flex" here from ``engine/flex_attention.py`` (imported on demand): same
signature, returning ``AttentionInputs`` whose ``attention_mask`` is a BlockMask built from the
same ``ends``; ``resolve_attention`` picks it for "auto" on CUDA.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from benchcal_eval.engine.packing import Row


@dataclass
class AttentionInputs:
    input_ids: torch.Tensor  # [rows, T] long
    position_ids: torch.Tensor  # [rows, T] long
    attention_mask: torch.Tensor  # [rows, 1, T, T] additive, model dtype (or a BlockMask)
    score_index: torch.Tensor  # [N] long, flat index into rows*T of positions predicting targets
    targets: torch.Tensor  # [N] long
    pair_index: torch.Tensor  # [M] long, index into the N scored targets
    owners: torch.Tensor  # [M] long, local scorer slot 0..len(owner_ids)-1 the pair counts for
    owner_ids: list[int]  # local slot -> global scorer index
    n_tokens: int  # real (non-padding) tokens in the batch
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # extra keywords for the model forward


def tree_mask(ends: torch.Tensor) -> torch.Tensor:
    """[rows, T] subtree ends -> boolean [rows, T, T] (True = query may attend key)."""
    t = ends.shape[1]
    idx = torch.arange(t, device=ends.device)
    q, k = idx[:, None], idx[None, :]
    return (k <= q) & (q < ends[:, None, :])


def padded_inputs(
    rows: Sequence[Row], t: int, device: torch.device | str
) -> tuple[AttentionInputs, list[list[int]]]:
    """Right-pad ``rows`` to ``t`` tokens: every tensor but the mask, plus the padded ``ends``
    (host lists: the mask builders plan from them without reading anything back).

    Shared by the dense and FlexAttention builders, which differ only in how the mask is encoded.
    """
    ids: list[list[int]] = []
    pos: list[list[int]] = []
    ends: list[list[int]] = []
    score_index: list[int] = []
    targets: list[int] = []
    pair_index: list[int] = []
    owners: list[int] = []
    local: dict[int, int] = {}
    for i, r in enumerate(rows):
        pad = t - len(r)
        ids.append([*r.tokens, *([0] * pad)])
        pos.append([*r.position_ids, *([0] * pad)])
        ends.append([*r.ends, *range(len(r) + 1, t + 1)])  # padding: only itself
        base = len(targets)
        score_index.extend(i * t + p for p in r.score_positions)
        targets.extend(r.targets)
        pair_index.extend(base + j for j in r.pair_targets)
        owners.extend(local.setdefault(o, len(local)) for o in r.pair_owners)

    def as_long(x: list) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.long, device=device)

    inputs = AttentionInputs(
        input_ids=as_long(ids),
        position_ids=as_long(pos),
        attention_mask=None,  # type: ignore[arg-type]  # set by the builder
        score_index=as_long(score_index),
        targets=as_long(targets),
        pair_index=as_long(pair_index),
        owners=as_long(owners),
        owner_ids=list(local),
        n_tokens=sum(len(r) for r in rows),
    )
    return inputs, ends


def build_attention_inputs(
    rows: Sequence[Row], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> AttentionInputs:
    """Right-pad the rows to the longest one and build the dense additive tree mask."""
    inputs, ends = padded_inputs(rows, max(len(r) for r in rows), device)
    allowed = tree_mask(torch.tensor(ends, dtype=torch.long, device=device))
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    inputs.attention_mask = mask[:, None]
    return inputs


Builder = Callable[[Sequence[Row], "torch.device | str", torch.dtype], AttentionInputs]
ATTENTION_BUILDERS: dict[str, Builder] = {"dense": build_attention_inputs}


_MODULES = {"flex": "benchcal_eval.engine.flex_attention", "tree": "benchcal_eval.engine.tree_attention"}


def _load(name: str) -> bool:
    if name not in ATTENTION_BUILDERS and name in _MODULES:
        try:
            importlib.import_module(_MODULES[name])
        except ImportError:
            return False
    return name in ATTENTION_BUILDERS


def resolve_attention(attention: str, device: torch.device, config: Any = None) -> Builder:
    """Pick the mask builder. "auto": "flex" on CUDA (block-sparse kernel), "tree" elsewhere
    (chunked gathers, see ``engine.tree_attention``) when the model's attention allows it, else
    "dense".

    A builder may carry an ``attn_implementation`` attribute (the HF attention implementation its
    mask is meant for); the engine switches the model to it while scoring.
    """
    if attention == "auto":
        if device.type == "cuda" and _load("flex"):
            attention = "flex"
        elif device.type != "cuda" and _load("tree") and (config is None or _tree_supports(config)):
            attention = "tree"
        else:
            attention = "dense"
    elif attention in _MODULES and attention not in ATTENTION_BUILDERS:
        importlib.import_module(_MODULES[attention])  # an explicit choice: let ImportError show
    if attention not in ATTENTION_BUILDERS:
        raise ValueError(
            f"attention must be 'auto' or one of {sorted({*ATTENTION_BUILDERS, *_MODULES})}, got {attention!r}"
        )
    return ATTENTION_BUILDERS[attention]


def _tree_supports(config: Any) -> bool:
    from benchcal_eval.engine.tree_attention import supports

    return supports(config)
