"""Our ScoringEngine vs lm-evaluation-harness ``HFLM.loglikelihood`` on one (benchmark, shots) pair (CPU).

The single-pair version of ``benchmarks/compare_sweep.py`` (same protocol, same code): arc_easy
3-shot, first 60 questions, llm-foundry's independent few-shot draws (the prompts of the earlier
runs in RESULTS.md), SmolLM2-135M-Instruct fp32, one model object. Both sides are timed
including their own tokenisation, warmed up, and timed alternately ``--repeats`` times (medians
on both sides); the harness runs at the batch size that wins a sweep over ``--batch-sizes``.

    .venv/bin/python benchmarks/compare_harness.py [--questions 60] [--shots 3] [--repeats 3]

The last line is ``speedup: <ratio>x (ours <a> req/s, harness <b> req/s); choices agree: <k>/<n>; max |dlogprob|: <d>``.
"""

from __future__ import annotations

import argparse

from compare_sweep import main as sweep_main  # benchmarks/ is on sys.path when run as a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--sampling", default="independent")
    args, rest = ap.parse_known_args()
    argv = ["--tasks", args.task, "--shots", str(args.shots), "--questions", str(args.questions),
            "--sampling", args.sampling, "--sweep-questions", str(min(args.questions, 16)), *rest]  # fmt: skip
    sweep_main(argv, single_pair_line=True)


if __name__ == "__main__":
    main()
