"""Tree attention by query chunks: each chunk attends only to its own keys and their ancestors.

The dense builder (``engine.attention``) gives SDPA a ``[rows, 1, T, T]`` mask, so every query
pays for all T keys of its row although it may only see its ancestors. With trie rows that is
most of the work: on the few-shot sweep rows hold one question's whole shot tree (~2k tokens)
while a token has ~240 ancestors on average. Here each row is cut into chunks of ``CHUNK``
queries; a chunk starting at ``a`` can only see keys ``k < a`` with ``ends[k] > a`` (the
ancestors of ``a``, which are ancestors of every later query in the chunk or not visible to any)
plus the chunk itself. Those keys are gathered once per layer and SDPA runs on
``[chunks, heads, CHUNK, keys]`` with the same rule (``attention.tree_mask``) as a small mask.
Chunks with similar key counts share a call, so padding keys stay few.

The plan (gather indices and masks) is built once per batch on the host and reused by every
layer; it reaches the attention function as the ``benchcal_tree`` keyword, which HF decoders
pass through to their attention implementation. The model runs with
``attn_implementation="benchcal_tree"`` (registered in transformers' ``AttentionInterface``)
and no HF mask (a custom implementation gets none). Not for attention logit soft-capping or
sliding windows (``supports`` says so; the engine then keeps the dense mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from benchcal_eval.engine.inputs import AttentionInputs, assemble_inputs
from benchcal_eval.engine.packing import Row, concatenate_rows

__all__ = ["CHUNK", "TreePlan", "build_tree_attention_inputs", "supports", "tree_attention_forward"]

CHUNK = 128  # queries per chunk: small enough that few keys are wasted, large enough for the GEMMs
IMPLEMENTATION = "benchcal_tree"


@dataclass
class ChunkGroup:
    """Chunks attended in one SDPA call."""

    chunks: torch.Tensor  # [n] long, chunk index into the batch's rows*T/CHUNK chunks
    keys: torch.Tensor  # [n * K] long, flat index into rows*T of each chunk's keys (padded)
    mask: torch.Tensor  # [n, 1, CHUNK, K] additive


@dataclass
class TreePlan:
    groups: list[ChunkGroup]
    length: int  # padded row length (a multiple of CHUNK)


def supports(config: Any) -> bool:
    """Whether this attention computes what the model's own attention would."""
    return getattr(config, "attn_logit_softcapping", None) is None and not getattr(
        config, "sliding_window", None
    )


def _chunk_keys(ends: list[int], length: int) -> list[list[int]]:
    """Per chunk of one row: ancestors of its first query, then the chunk's own positions."""
    out = []
    open_: list[int] = []  # positions whose subtree is still open at the current chunk start
    for a in range(0, length, CHUNK):
        # ancestors of a = keys k < a with ends[k] > a; ends nest (a tree), so keep a stack
        prev = a - CHUNK
        if prev >= 0:
            for k in range(prev, a):
                while open_ and ends[open_[-1]] <= k:
                    open_.pop()
                open_.append(k)
            while open_ and ends[open_[-1]] <= a:
                open_.pop()
        out.append([k for k in open_ if ends[k] > a] + list(range(a, a + CHUNK)))
    return out


def tree_plan(ends: list[list[int]], device: torch.device | str, dtype: torch.dtype) -> TreePlan:
    """Gathers and masks for padded per-row ends (each row a multiple of CHUNK long), on the host."""
    t = len(ends[0])
    per_row = ends
    chunk_keys = []
    for r, row_ends in enumerate(per_row):
        chunk_keys.extend((r, c, keys) for c, keys in enumerate(_chunk_keys(row_ends, t)))
    # bucket chunks by key count (rounded up to a power of two times CHUNK/2) to limit padding
    buckets: dict[int, list[tuple[int, int, list[int]]]] = {}
    for item in chunk_keys:
        n = len(item[2])
        size = CHUNK
        while size < n:
            size += size // 2 if size >= 4 * CHUNK else CHUNK // 2
        buckets.setdefault(size, []).append(item)
    groups = []
    per_chunk = t // CHUNK
    flat_ends = torch.tensor(ends, dtype=torch.long).reshape(-1)
    for size, items in sorted(buckets.items()):
        flat_keys = []
        queries = []
        for r, c, keys in items:
            pad = size - len(keys)
            flat_keys.extend(r * t + k for k in keys)
            flat_keys.extend([r * t + keys[-1]] * pad)  # padding keys: masked out below
            queries.append(r * t + c * CHUNK)
        key_index = torch.tensor(flat_keys, dtype=torch.long).view(len(items), size)
        q_index = torch.tensor(queries, dtype=torch.long)[:, None] + torch.arange(CHUNK)[None, :]
        valid = torch.zeros(len(items), size, dtype=torch.bool)
        for i, (_, _, keys) in enumerate(items):
            valid[i, : len(keys)] = True
        k_pos = key_index % t
        q_pos = q_index % t
        allowed = (
            (k_pos[:, None, :] <= q_pos[:, :, None])
            & (q_pos[:, :, None] < flat_ends[key_index][:, None, :])
            & valid[:, None, :]
        )
        mask = torch.zeros(allowed.shape, dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        chunks = torch.tensor([r * per_chunk + c for r, c, _ in items], dtype=torch.long)
        groups.append(
            ChunkGroup(chunks.to(device), key_index.reshape(-1).to(device), mask[:, None].to(device))
        )
    return TreePlan(groups, t)


def tree_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    benchcal_tree: TreePlan | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """HF attention-interface function: query [b, h, T, d], key/value [b, h_kv, T, d] -> [b, T, h, d].

    T may be shorter than the plan's length (an unpadded row): padded here, cut off the output."""
    if benchcal_tree is None:
        raise ValueError("benchcal_tree attention needs the batch's TreePlan (engine.tree_attention)")
    if kwargs.get("softcap") is not None or kwargs.get("sliding_window"):
        raise ValueError("benchcal_tree attention supports neither logit soft-capping nor sliding windows")
    b, h, t_in, d = query.shape
    h_kv = key.shape[1]
    t = benchcal_tree.length
    if t_in < t:  # the model ran the row unpadded; pad here, where it costs only attention
        pad = (0, 0, 0, t - t_in)
        query, key, value = (torch.nn.functional.pad(x, pad) for x in (query, key, value))
    q_chunks = query.reshape(b, h, t // CHUNK, CHUNK, d).permute(0, 2, 1, 3, 4).reshape(-1, h, CHUNK, d)
    k_flat = key.transpose(1, 2).reshape(b * t, h_kv, d)
    v_flat = value.transpose(1, 2).reshape(b * t, h_kv, d)
    out = torch.empty_like(q_chunks)
    for group in benchcal_tree.groups:
        n = group.chunks.shape[0]
        k = k_flat.index_select(0, group.keys).view(n, -1, h_kv, d).transpose(1, 2)
        v = v_flat.index_select(0, group.keys).view(n, -1, h_kv, d).transpose(1, 2)
        q = q_chunks.index_select(0, group.chunks)
        o = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=group.mask, scale=scaling, enable_gqa=h != h_kv
        )
        out.index_copy_(0, group.chunks, o)
    # [chunks, h, CHUNK, d] -> [b, T, h, d]
    out = out.view(b, t // CHUNK, h, CHUNK, d).permute(0, 1, 3, 2, 4).reshape(b, t, h, d)
    return (out if t_in == t else out[:, :t_in]), None


def build_tree_attention_inputs(
    rows: Sequence[Row], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> AttentionInputs:
    """The batch as one unpadded sequence (its rows end to end); no HF mask, the TreePlan (for
    the length rounded up to CHUNK) as a model keyword. Padding a batch to rows x longest row,
    or to a multiple of CHUNK, would run every padding token through every linear layer; here
    the only padding is the few queries and keys ``tree_attention_forward`` adds."""
    row = concatenate_rows(rows)
    n = len(row)
    inputs, ends = assemble_inputs([row], n, device)
    length = -(-n // CHUNK) * CHUNK
    padded = [[*ends[0], *range(n + 1, length + 1)]]  # padding: only itself, as in assemble_inputs
    inputs.model_kwargs = {"benchcal_tree": tree_plan(padded, device, dtype)}
    return inputs


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(IMPLEMENTATION, tree_attention_forward)


_register()
build_tree_attention_inputs.attn_implementation = IMPLEMENTATION  # type: ignore[attr-defined]
build_tree_attention_inputs.flat_rows = True  # type: ignore[attr-defined]  # one row per batch: pack_requests(flat=True)
