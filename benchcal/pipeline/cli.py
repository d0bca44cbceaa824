"""``benchcal run [RUN.yaml]``: evaluate every checkpoint of a CalibrationRun locally, then reduce.

Without a file it runs the embedded default (``benchcal/examples/tiny-demo.yaml``): a tiny
scaling series that benchcal trains itself on the CPU, on a handful of gauntlet benchmarks.
"""

from __future__ import annotations

import argparse
import logging
import time
from importlib import resources
from pathlib import Path

from benchcal.errors import EXIT_CRASH, BadInput
from benchcal.pipeline.local import evaluate_all, plan_local, results_dir
from benchcal.spec import load_run

log = logging.getLogger("benchcal.run")

DEFAULT_RUN = "tiny-demo.yaml"


def default_run_path() -> Path:
    return Path(str(resources.files("benchcal") / "examples" / DEFAULT_RUN))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_file",
        nargs="?",
        metavar="RUN.yaml",
        help=f"a CalibrationRun YAML (default: the embedded {DEFAULT_RUN}: a tiny series built on the CPU)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="results directory (default: spec.results.path or ./benchcal-results/NAME)",
    )
    parser.add_argument(
        "--parallel", type=int, default=1, metavar="N", help="checkpoints evaluated at once (default 1)"
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


def run(args: argparse.Namespace) -> int:
    path = Path(args.run_file) if args.run_file else default_run_path()
    run_spec = load_run(path)
    if args.parallel < 1:
        raise BadInput(f"--parallel must be >= 1, got {args.parallel}")
    out_root = results_dir(run_spec, args.out).resolve()
    steps = plan_local(run_spec, out_root)
    benchmarks = ", ".join(sorted({b.name for b in run_spec.suite.benchmarks}))
    print(
        f"CalibrationRun {run_spec.name}: {len(steps)} checkpoints x [{benchmarks}] -> {out_root}", flush=True
    )

    started = time.monotonic()
    outcomes = evaluate_all(steps, parallel=args.parallel)
    failed = [o for o in outcomes if o.returncode != 0]
    for o in failed:
        print(f"checkpoint {o.checkpoint} failed (exit {o.returncode}); log: {o.log_path}\n  {o.message}")

    # Reduce whatever finished: results of failed checkpoints are simply absent, never discarded.
    from benchcal_reduce.cli import print_classification
    from benchcal_reduce.reduce import ReduceOptions, reduce_table
    from benchcal_reduce.report import write_outputs
    from benchcal_reduce.table import load_table

    done = [s.out_dir for s, o in zip(steps, outcomes, strict=True) if o.returncode == 0]
    if len(done) < 3:
        print(
            f"only {len(done)} checkpoint(s) finished; the reducer needs at least 3. Fix the failures and re-run (finished work is kept)."
        )
        return EXIT_CRASH if failed else 0
    table = load_table(out_root / "checkpoints")
    options = ReduceOptions(alpha=run_spec.classification.alpha, strict=run_spec.classification.strict)
    reduction = reduce_table(table, options)
    paths = write_outputs(reduction, out_root / "report", figures=not args.no_figures)
    print()
    print_classification(reduction)
    print(f"\nreport: {paths['report.md']}  ({time.monotonic() - started:.0f} s)")
    return EXIT_CRASH if failed else 0
