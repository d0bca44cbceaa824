"""The tensors of one forward over a batch of packed rows, shared by every attention path.

``assemble_inputs`` right-pads the rows to a given length and builds ids, positions, the flat
score index, targets and owners once, and returns the padded per-token subtree ``ends`` as host
lists; the attention path only encodes the mask from them (``attention.build_attention_inputs``:
a dense additive mask; ``flex_attention``: a FlexAttention BlockMask; ``tree_attention``: a
chunked gather plan passed as a model keyword). Padding gets ``ends = own index + 1``, so it
attends only to itself (no softmax row is empty) and nothing attends to it; it is never gathered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from benchcal_eval.engine.packing import Row


@dataclass
class AttentionInputs:
    input_ids: torch.Tensor  # [rows, T] long
    position_ids: torch.Tensor  # [rows, T] long
    attention_mask: Any  # dense: [rows, 1, T, T] additive, model dtype; flex: a BlockMask; tree: None
    score_index: torch.Tensor  # [N] long, flat index into rows*T of positions predicting targets
    targets: torch.Tensor  # [N] long
    pair_index: torch.Tensor  # [M] long, index into the N scored targets
    owners: torch.Tensor  # [M] long, local scorer slot 0..len(owner_ids)-1 the pair counts for
    owner_ids: list[int]  # local slot -> global scorer index
    n_tokens: int  # real (non-padding) tokens in the batch
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # extra keywords for the model forward


def assemble_inputs(
    rows: Sequence[Row], length: int, device: torch.device | str
) -> tuple[AttentionInputs, list[list[int]]]:
    """Right-pad ``rows`` to ``length`` tokens: every tensor but the mask (left None for the
    attention path to set), plus the padded ``ends`` (host lists: the mask builders plan from
    them without reading anything back)."""
    if length < max(len(r) for r in rows):
        raise ValueError(f"length {length} is shorter than the longest row")
    ids: list[list[int]] = []
    pos: list[list[int]] = []
    ends: list[list[int]] = []
    score_index: list[int] = []
    targets: list[int] = []
    pair_index: list[int] = []
    owners: list[int] = []
    local: dict[int, int] = {}
    for i, r in enumerate(rows):
        pad = length - len(r)
        ids.append([*r.tokens, *([0] * pad)])
        pos.append([*r.position_ids, *([0] * pad)])
        ends.append([*r.ends, *range(len(r) + 1, length + 1)])  # padding: only itself
        base = len(targets)
        score_index.extend(i * length + p for p in r.score_positions)
        targets.extend(r.targets)
        pair_index.extend(base + j for j in r.pair_targets)
        owners.extend(local.setdefault(o, len(local)) for o in r.pair_owners)

    def as_long(x: list) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.long, device=device)

    inputs = AttentionInputs(
        input_ids=as_long(ids),
        position_ids=as_long(pos),
        attention_mask=None,
        score_index=as_long(score_index),
        targets=as_long(targets),
        pair_index=as_long(pair_index),
        owners=as_long(owners),
        owner_ids=list(local),
        n_tokens=sum(len(r) for r in rows),
    )
    return inputs, ends
