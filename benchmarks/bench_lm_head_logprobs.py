"""Fused Triton LM-head scoring vs torch eager: median time and peak memory per shape.

torch eager (``kernels.reference.eager_lm_head_logprobs``) is what an evaluator does without the
kernel: ``logits = h @ W.T`` (bf16, cuBLAS), ``log_softmax(logits.float())``, ``gather`` of the
target, and the greedy test against the row max. Ours is
``kernels.triton_lm_head_logprobs.triton_lm_head_logprobs`` (logits never leave registers). Both get the same bf16
inputs; agreement (max |delta log-prob|, greedy flags) is printed next to the timings.

    python benchmarks/bench_lm_head_logprobs.py                 # the full sweep, needs CUDA (~1-2 min on an H200)
    python benchmarks/bench_lm_head_logprobs.py --smoke         # tiny shapes; on CPU through the Triton interpreter
    python benchmarks/bench_lm_head_logprobs.py --csv out.csv   # also append one CSV row per case

One line per case: ``kernel V=<V> C=<C> N=<N> on <device>: speedup <r>x; memory <m>x less``.
Peak memory is what the call allocates on top of its inputs (``max_memory_allocated`` delta).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluator"))

from benchcal_eval.kernels.reference import eager_lm_head_logprobs
from benchcal_eval.kernels.triton_lm_head_logprobs import triton_lm_head_logprobs

VOCABS = (50304, 128256, 151936)  # GPT-NeoX/Pythia (padded 50k), Llama-3, Qwen2
HIDDENS = (2048, 4096)
ROWS = (4096, 32768)
SMOKE_CASES = ((1031, 64, 37), (4099, 128, 64))


def ours(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return triton_lm_head_logprobs(h, w, t)


def median_ms(fn: Callable[[], object], device: torch.device, reps: int) -> float:
    """Median wall time of ``reps`` calls after two warm-ups (CUDA events on GPU)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Bytes allocated by one call on top of what was live before it (None on CPU)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak


def run_case(v: int, c: int, n: int, device: torch.device, dtype: torch.dtype, reps: int) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    h = (torch.randn(n, c, device=device, generator=g) * 2).to(dtype)
    w = (torch.randn(v, c, device=device, generator=g) / c**0.5).to(dtype)
    t = torch.randint(0, v, (n,), device=device, generator=g)
    ref_lp, ref_greedy = eager_lm_head_logprobs(h, w, t)
    lp, greedy = ours(h, w, t)
    max_diff = (lp - ref_lp).abs().max().item()
    greedy_agree = (greedy == ref_greedy).float().mean().item()
    del ref_lp, ref_greedy, lp, greedy
    eager_ms = median_ms(lambda: eager_lm_head_logprobs(h, w, t), device, reps)
    ours_ms = median_ms(lambda: ours(h, w, t), device, reps)
    eager_mem = peak_bytes(lambda: eager_lm_head_logprobs(h, w, t), device)
    ours_mem = peak_bytes(lambda: ours(h, w, t), device)
    tflop = 2 * n * v * c / 1e12
    return {
        "V": v, "C": c, "N": n, "dtype": str(dtype).removeprefix("torch."),
        "eager_ms": eager_ms, "ours_ms": ours_ms, "speedup": eager_ms / ours_ms,
        "ours_tflops": tflop / (ours_ms / 1e3), "eager_tflops": tflop / (eager_ms / 1e3),
        "eager_peak_mib": None if eager_mem is None else eager_mem / 2**20,
        "ours_peak_mib": None if ours_mem is None else ours_mem / 2**20,
        "memory_ratio": None if not ours_mem or eager_mem is None else eager_mem / ours_mem,
        "max_abs_diff": max_diff, "greedy_agree": greedy_agree,
    }  # fmt: skip


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (Triton interpreter)"


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny shapes (CPU interpreter or a quick GPU check)"
    )
    parser.add_argument("--reps", type=int, default=None, help="timed calls per provider (median reported)")
    parser.add_argument("--csv", type=Path, help="append one row per case to this CSV file")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.smoke:
        parser.error("the full sweep needs a CUDA GPU; use --smoke on CPU")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32  # the interpreter has no bf16
    cases = SMOKE_CASES if args.smoke else tuple(itertools.product(VOCABS, HIDDENS, ROWS))
    reps = args.reps or (1 if device.type == "cpu" else 10)
    name = device_name(device)
    print(
        f"# bench_lm_head_logprobs on {name}; torch {torch.__version__}; dtype {dtype}; git {git_sha()}",
        flush=True,
    )

    rows = []
    for v, c, n in cases:
        r = run_case(v, c, n, device, dtype, reps)
        rows.append(r)
        mem = (
            "n/a"
            if r["eager_peak_mib"] is None
            else f"{r['eager_peak_mib']:.1f} vs {r['ours_peak_mib']:.1f} MiB"
        )
        print(
            f"  V={v} C={c} N={n}: eager {r['eager_ms']:.2f} ms ({r['eager_tflops']:.0f} TFLOP/s), "
            f"ours {r['ours_ms']:.2f} ms ({r['ours_tflops']:.0f} TFLOP/s); peak {mem}; "
            f"max|dlogp| {r['max_abs_diff']:.2e}; greedy agree {r['greedy_agree']:.4f}",
            flush=True,
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()

    if args.csv:
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["device", "git", "torch", *rows[0]])
            if new:
                writer.writeheader()
            for r in rows:
                writer.writerow({"device": name, "git": git_sha(), "torch": torch.__version__, **r})

    for r in rows:
        mem = "memory n/a on cpu" if r["memory_ratio"] is None else f"memory {r['memory_ratio']:.1f}x less"
        print(f"kernel V={r['V']} C={r['C']} N={r['N']} on {name}: speedup {r['speedup']:.2f}x; {mem}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
