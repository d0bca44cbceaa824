"""Fused LM-head scoring in Triton: target log-prob and greedy flag without materialising logits.

For each scored row n (a position whose next token is part of a continuation):

    z[n, v]      = transform(h[n] . W[v] + b[v])          (scale, then softcap*tanh(z/softcap))
    logprob[n]   = z[n, t_n] - logsumexp_v z[n, v]
    is_argmax[n] = z[n, t_n] >= max_v z[n, v]             (ties accepted, as in reference.py)

Shapes: hidden [N, C], weight [V, C] (tied or untied: just the matrix), targets [N], bias [V].

Two launches, both deterministic:
1. ``_lm_head_partials_kernel`` on a (row tiles x V-splits) grid. Each program walks its slice of
   the vocabulary in BLOCK_V tiles, accumulates each [BLOCK_N, BLOCK_V] logit tile in fp32 over
   C, and keeps an online (max, sum-exp) plus the target logit in registers. Only three fp32
   numbers per (row, split) reach global memory, never the [N, V] logits.
2. ``_lm_head_merge_kernel`` combines the per-split partials in fixed split order (no atomics,
   no spin-locks), so results do not depend on scheduling.

Splitting V matters because scoring batches often have only a few hundred rows: a row-tiled grid
alone would leave most SMs idle. It also keeps both operands in L2 for large N: axis 0 of the
grid is the split, so the programs resident together cover a few row tiles (their hidden blocks
stay in L2) times many splits (each weight tile is read from HBM once per few row tiles).

A target outside [0, V) yields NaN (instead of a host-side check that would force a device sync).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

__all__ = ["triton_lm_head_logprobs"]

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@triton.jit
def _lm_head_partials_kernel(
    h_ptr,
    w_ptr,
    b_ptr,
    t_ptr,
    pmax_ptr,
    psum_ptr,
    ptgt_ptr,
    N,
    V,
    C,
    stride_hn,
    stride_wv,
    tiles_per_split,
    scale,
    softcap,
    HAS_BIAS: tl.constexpr,
    HAS_SCALE: tl.constexpr,
    HAS_SOFTCAP: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Per-(row tile, V-split) partial (max, sum-exp, target logit).

    h_ptr [N, C] (row stride stride_hn, unit column stride), w_ptr [V, C] (row stride stride_wv),
    b_ptr [V] (read iff HAS_BIAS), t_ptr [N] int64 targets.
    pmax/psum/ptgt [num_splits, N] fp32 outputs: running max, sum of exp(z - max), and the target
    logit if the target lies in this split's V range (else 0.0, so the merge can simply add).
    The split covers V tiles [split * tiles_per_split, (split + 1) * tiles_per_split).
    DOT_PRECISION: "ieee" for fp32 inputs (no TF32 rounding), "tf32" otherwise (ignored for 16-bit).
    """
    pid_s = tl.program_id(0)
    pid_n = tl.program_id(1)

    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    # int64 offsets: V * C and N * C exceed 2**31 for large vocabularies and batches.
    rows64 = rows.to(tl.int64)
    targets = tl.load(t_ptr + rows64, mask=row_ok, other=-1)

    m_i = tl.full([BLOCK_N], float("-inf"), dtype=tl.float32)
    s_i = tl.zeros([BLOCK_N], dtype=tl.float32)
    tgt = tl.zeros([BLOCK_N], dtype=tl.float32)

    k_range = tl.arange(0, BLOCK_K)
    h_tile_ptrs = h_ptr + rows64[:, None] * stride_hn + k_range[None, :]  # [BLOCK_N, BLOCK_K]
    v_start = pid_s * tiles_per_split * BLOCK_V
    for tile in range(0, tiles_per_split):
        cols = v_start + tile * BLOCK_V + tl.arange(0, BLOCK_V)
        col_ok = cols < V
        cols64 = cols.to(tl.int64)
        w_tile_ptrs = w_ptr + cols64[None, :] * stride_wv + k_range[:, None]  # [BLOCK_K, BLOCK_V] = W^T

        # 1. logits tile z = h @ W^T, accumulated in fp32 over the hidden dimension.
        acc = tl.zeros([BLOCK_N, BLOCK_V], dtype=tl.float32)
        for k0 in range(0, C, BLOCK_K):
            k_ok = (k0 + k_range) < C
            h = tl.load(h_tile_ptrs + k0, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            w = tl.load(w_tile_ptrs + k0, mask=col_ok[None, :] & k_ok[:, None], other=0.0)
            acc = tl.dot(h, w, acc, input_precision=DOT_PRECISION)

        # 2. the same transforms as reference.apply_logit_transforms, in the same order.
        if HAS_BIAS:
            bias = tl.load(b_ptr + cols64, mask=col_ok, other=0.0).to(tl.float32)
            acc = acc + bias[None, :]
        if HAS_SCALE:
            acc = acc * scale
        if HAS_SOFTCAP:
            # tanh(x) = 2 * sigmoid(2x) - 1, written with exp so it exists in every Triton version.
            x = acc / softcap
            acc = softcap * (2.0 / (1.0 + tl.exp(-2.0 * x)) - 1.0)
        acc = tl.where(col_ok[None, :], acc, float("-inf"))

        # 3. target logit: exactly one tile of one split holds it; the others add 0.0.
        hit = cols64[None, :] == targets[:, None]
        tgt += tl.sum(tl.where(hit, acc, 0.0), axis=1)

        # 4. online log-sum-exp (every tile has at least one valid column, so m_new is finite).
        m_new = tl.maximum(m_i, tl.max(acc, axis=1))
        s_i = s_i * tl.exp(m_i - m_new) + tl.sum(tl.exp(acc - m_new[:, None]), axis=1)
        m_i = m_new

    out = pid_s.to(tl.int64) * N + rows64
    tl.store(pmax_ptr + out, m_i, mask=row_ok)
    tl.store(psum_ptr + out, s_i, mask=row_ok)
    tl.store(ptgt_ptr + out, tgt, mask=row_ok)


@triton.jit
def _lm_head_merge_kernel(
    pmax_ptr,
    psum_ptr,
    ptgt_ptr,
    t_ptr,
    lp_ptr,
    greedy_ptr,
    N,
    V,
    NUM_SPLITS: tl.constexpr,
    SPLITS_POW2: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Merge [NUM_SPLITS, N] partials in fixed order into logprob fp32 [N] and is_argmax int8 [N]."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    rows64 = rows.to(tl.int64)
    splits = tl.arange(0, SPLITS_POW2)
    ok = row_ok[:, None] & (splits[None, :] < NUM_SPLITS)
    offs = splits[None, :].to(tl.int64) * N + rows64[:, None]

    pmax = tl.load(pmax_ptr + offs, mask=ok, other=float("-inf"))
    psum = tl.load(psum_ptr + offs, mask=ok, other=0.0)
    ptgt = tl.load(ptgt_ptr + offs, mask=ok, other=0.0)

    row_max = tl.where(row_ok, tl.max(pmax, axis=1), 0.0)  # rows past N: avoid -inf - -inf
    total = tl.where(row_ok, tl.sum(psum * tl.exp(pmax - row_max[:, None]), axis=1), 1.0)
    lse = row_max + tl.log(total)
    target_logit = tl.sum(ptgt, axis=1)  # one non-zero term per row: exact

    targets = tl.load(t_ptr + rows64, mask=row_ok, other=0)
    valid = (targets >= 0) & (targets < V)
    logprob = tl.where(valid, target_logit - lse, float("nan"))
    greedy = valid & (target_logit >= row_max)
    tl.store(lp_ptr + rows64, logprob, mask=row_ok)
    tl.store(greedy_ptr + rows64, greedy.to(tl.int8), mask=row_ok)


# Launch geometry. Interpreter runs (CPU CI) simulate every program in numpy: small blocks, few
# programs. On GPU, 64/128 x 128 tiles with K=64 map onto tensor-core MMAs on Ampere and Hopper.
# Not autotuned yet: these are starting points until benchmarks/bench_lm_head_logprobs.py has run on a GPU.
_GPU_BLOCKS = {"BLOCK_N": 64, "BLOCK_V": 128, "BLOCK_K": 64, "num_warps": 4, "num_stages": 4}
_GPU_BLOCKS_MANY_ROWS = {"BLOCK_N": 128, "BLOCK_V": 128, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3}
_INTERPRET_BLOCKS = {"BLOCK_N": 16, "BLOCK_V": 64, "BLOCK_K": 32}
_MIN_GPU_SPLITS = 16  # for L2 reuse of the hidden blocks when N is large (see module docstring)


def launch_geometry(n: int, v: int, sm_count: int | None) -> tuple[dict, int, int]:
    """Block sizes, V tiles per split and the number of splits (row tiles x splits fill the GPU).

    ``sm_count`` None means the interpreter (small blocks, few programs). Every split is non-empty
    and together they cover all ``cdiv(v, BLOCK_V)`` tiles.
    """
    if sm_count is None:
        blocks = dict(_INTERPRET_BLOCKS)
        target_programs, min_splits = 4, 1
    else:
        blocks = dict(_GPU_BLOCKS_MANY_ROWS if n >= 8192 else _GPU_BLOCKS)
        target_programs, min_splits = 2 * sm_count, _MIN_GPU_SPLITS
    num_tiles = triton.cdiv(v, blocks["BLOCK_V"])
    row_tiles = triton.cdiv(n, blocks["BLOCK_N"])
    wanted = max(1, min(num_tiles, max(min_splits, triton.cdiv(target_programs, row_tiles))))
    tiles_per_split = triton.cdiv(num_tiles, wanted)
    num_splits = triton.cdiv(num_tiles, tiles_per_split)  # no split is empty
    return blocks, tiles_per_split, num_splits


def _check_inputs(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: torch.Tensor | None
) -> None:
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"shapes: hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)} do not match"
        )
    if targets.shape != (hidden.shape[0],):
        raise ValueError(f"targets must have shape ({hidden.shape[0]},), got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer token ids, got {targets.dtype}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    supported = (torch.float32, torch.float16, torch.bfloat16)
    if hidden.dtype not in supported or weight.dtype not in supported:
        raise ValueError(f"hidden/weight dtype must be fp32, fp16 or bf16, got {hidden.dtype}/{weight.dtype}")
    tensors = [hidden, weight, targets] + ([] if bias is None else [bias])
    if len({t.device for t in tensors}) != 1:
        raise ValueError("hidden, weight, targets and bias must be on the same device")
    if hidden.device.type != "cuda" and not _INTERPRET:
        raise ValueError("the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1 set before import)")


def triton_lm_head_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [N, C], weight [V, C], targets [N] -> (logprob fp32 [N], is_argmax bool [N]).

    Same contract as ``reference.lm_head_logprobs``; logits stay in fp32 registers throughout.
    """
    _check_inputs(hidden, weight, targets, bias)
    n, c = hidden.shape
    v = weight.shape[0]
    device = hidden.device
    logprob = torch.empty(n, dtype=torch.float32, device=device)
    greedy = torch.empty(n, dtype=torch.int8, device=device)
    if n == 0:
        return logprob, greedy.bool()
    if hidden.dtype != weight.dtype:  # tl.dot needs one operand dtype; keep the wider one
        common = torch.promote_types(hidden.dtype, weight.dtype)
        hidden, weight = hidden.to(common), weight.to(common)
    # Unit stride along C is what the kernels assume; row strides may be anything.
    if hidden.stride(1) != 1:
        hidden = hidden.contiguous()
    if weight.stride(1) != 1:
        weight = weight.contiguous()
    targets = targets.to(torch.int64).contiguous()
    bias_arg = bias.contiguous() if bias is not None else hidden  # dummy pointer when absent

    interpreted = _INTERPRET or device.type != "cuda"
    sm_count = None if interpreted else torch.cuda.get_device_properties(device).multi_processor_count
    blocks, tiles_per_split, num_splits = launch_geometry(n, v, sm_count)
    partials = torch.empty((3, num_splits, n), dtype=torch.float32, device=device)
    grid = (num_splits, triton.cdiv(n, blocks["BLOCK_N"]))
    _lm_head_partials_kernel[grid](
        hidden,
        weight,
        bias_arg,
        targets,
        partials[0],
        partials[1],
        partials[2],
        n,
        v,
        c,
        hidden.stride(0),
        weight.stride(0),
        tiles_per_split,
        float(scale) if scale is not None else 1.0,
        float(softcap) if softcap is not None else 1.0,
        HAS_BIAS=bias is not None,
        HAS_SCALE=scale is not None,
        HAS_SOFTCAP=softcap is not None,
        DOT_PRECISION="ieee" if hidden.dtype == torch.float32 else "tf32",
        **blocks,
    )
    splits_pow2 = triton.next_power_of_2(num_splits)
    merge_rows = min(64, max(16, 4096 // splits_pow2))  # keep the [rows, splits] tile in registers
    _lm_head_merge_kernel[(triton.cdiv(n, merge_rows),)](
        partials[0],
        partials[1],
        partials[2],
        targets,
        logprob,
        greedy,
        n,
        v,
        NUM_SPLITS=num_splits,
        SPLITS_POW2=splits_pow2,
        BLOCK_N=merge_rows,
    )
    return logprob, greedy.bool()
