"""The tensors of one forward over a batch of packed rows, shared by every attention path.

``assemble_inputs`` right-pads the rows to a given length and builds ids, positions, the flat
score index, targets and owners once; the attention path only supplies the mask, built from the
padded segment and branch ids (``attention.build_attention_inputs``: a dense additive mask;
``flex_attention.build_flex_attention_inputs``: a FlexAttention BlockMask). Padding has segment
``PAD`` and branch ``CONTEXT``, so it attends only to itself and is never gathered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from benchcal_eval.engine.packing import CONTEXT, PAD, Row

# (segment ids [rows, T], branch ids [rows, T]) -> the attention_mask the model gets
MaskBuilder = Callable[[torch.Tensor, torch.Tensor], Any]


@dataclass
class AttentionInputs:
    input_ids: torch.Tensor  # [rows, T] long
    position_ids: torch.Tensor  # [rows, T] long
    attention_mask: Any  # dense: [rows, 1, T, T] additive, model dtype; flex: a BlockMask
    score_index: torch.Tensor  # [N] long, flat index into rows*T of positions predicting targets
    targets: torch.Tensor  # [N] long
    owners: torch.Tensor  # [N] long, local branch slot 0..len(owner_ids)-1
    owner_ids: list[int]  # local slot -> global branch index
    n_tokens: int  # real (non-padding) tokens in the batch


def assemble_inputs(
    rows: Sequence[Row], length: int, device: torch.device | str, mask: MaskBuilder
) -> AttentionInputs:
    """Right-pad ``rows`` to ``length`` tokens and gather what the scorer needs; ``mask`` builds
    the attention mask from the padded segment and branch ids."""
    if length < max(len(r) for r in rows):
        raise ValueError(f"length {length} is shorter than the longest row")
    ids: list[list[int]] = []
    pos: list[list[int]] = []
    seg: list[list[int]] = []
    br: list[list[int]] = []
    score_index: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    local: dict[int, int] = {}
    for i, r in enumerate(rows):
        pad = length - len(r)
        ids.append([*r.tokens, *([0] * pad)])
        pos.append([*r.position_ids, *([0] * pad)])
        seg.append([*r.segment_ids, *([PAD] * pad)])
        br.append([*r.branch_ids, *([CONTEXT] * pad)])
        score_index.extend(i * length + p for p in r.score_positions)
        targets.extend(r.targets)
        owners.extend(local.setdefault(o, len(local)) for o in r.owners)

    def as_long(x: list) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.long, device=device)

    return AttentionInputs(
        input_ids=as_long(ids),
        position_ids=as_long(pos),
        attention_mask=mask(as_long(seg), as_long(br)),
        score_index=as_long(score_index),
        targets=as_long(targets),
        owners=as_long(owners),
        owner_ids=list(local),
        n_tokens=sum(len(r) for r in rows),
    )
