"""``benchcal run [RUN.yaml]``: the operator's pipeline on one machine, without Kubernetes.

The same CalibrationRun YAML, the same command lines (``benchcal.commands``) and the same results
layout (``benchcal.layout``) as in the cluster: one ``benchcal evaluate`` subprocess per checkpoint
(one after another, or a few in parallel), then ``benchcal reduce`` in this process. Every
evaluator writes its results as it goes, so a failed or interrupted run loses nothing: running
the same command again resumes.

Without a file it runs the embedded default (``benchcal/examples/tiny-demo.yaml``): a tiny
scaling series that benchcal trains itself on the CPU, on a handful of gauntlet benchmarks.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from benchcal import layout
from benchcal.app.cli import main as benchcal_main
from benchcal.commands import evaluate_command, reduce_command
from benchcal.errors import EXIT_CRASH, EXIT_OK, BadInput
from benchcal.spec import CalibrationRun, Checkpoint, load_run

log = logging.getLogger("benchcal.run")

DEFAULT_RUN = "tiny-demo.yaml"
# The evaluator runs as `python -m benchcal`, so a venv need not be on PATH.
EXECUTABLE = (sys.executable, "-m", "benchcal")
MIN_CHECKPOINTS = 3  # the reducer's trend tests need at least three


@dataclass(frozen=True)
class LocalStep:
    checkpoint: str
    command: list[str]
    out_dir: Path
    log_path: Path


@dataclass
class StepOutcome:
    checkpoint: str
    returncode: int
    seconds: float
    log_path: Path
    message: str = ""


def default_run_path() -> Path:
    return Path(str(resources.files("benchcal") / "examples" / DEFAULT_RUN))


def local_model_argument(ckpt: Checkpoint, index: int) -> str:
    """The evaluator's --model for a checkpoint on this machine; cluster-only sources are rejected."""
    m = ckpt.model
    where = f"spec.checkpoints[{index}].model"
    if m.kind == "path":
        return m.path
    if m.kind == "builtin":
        return f"builtin:{m.builtin}"
    if m.kind == "hub":
        return m.hub_id
    if m.kind == "uri" and m.uri.startswith("file://"):
        return m.uri[len("file://") :]
    if m.kind == "pvc":
        raise BadInput(f"{where}.pvc: a PersistentVolumeClaim exists only in a cluster; locally use `path:`")
    raise BadInput(f"{where}.uri: {m.uri!r} cannot be read locally; use `path:` or a file:// URI")


def results_dir(run: CalibrationRun, override: str | Path | None = None) -> Path:
    """The results root: --out, else spec.results.path, else ./benchcal-results/NAME."""
    if override is not None:
        return Path(override)
    if run.results is not None and run.results.kind == "path" and run.results.path:
        return Path(run.results.path)
    return Path("benchcal-results") / run.name


def plan_local(run: CalibrationRun, out_root: Path) -> list[LocalStep]:
    """One step (one evaluator command) per checkpoint, in FLOPs order (small models first: early feedback)."""
    order = sorted(range(len(run.checkpoints)), key=lambda i: run.checkpoints[i].flops)
    steps = []
    for i in order:
        ckpt = run.checkpoints[i]
        out_dir = layout.checkpoint_dir(out_root, ckpt.name)
        command = evaluate_command(
            run, ckpt, model=local_model_argument(ckpt, i), out_dir=str(out_dir), executable=EXECUTABLE
        )
        steps.append(LocalStep(ckpt.name, command, out_dir, out_root / "logs" / f"{ckpt.name}.log"))
    return steps


def _run_step(step: LocalStep, threads: int) -> StepOutcome:
    step.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "BENCHCAL_NUM_THREADS": str(threads)}
    started = time.monotonic()
    with open(step.log_path, "a", encoding="utf-8") as logf:
        logf.write(f"$ {' '.join(step.command)}\n")
        logf.flush()
        rc = subprocess.run(
            step.command, stdout=logf, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    message = ""
    if rc != 0:
        tail = step.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        message = " | ".join(tail)
    return StepOutcome(step.checkpoint, rc, time.monotonic() - started, step.log_path, message)


def evaluate_all(steps: list[LocalStep], parallel: int = 1) -> list[StepOutcome]:
    """Run every checkpoint's evaluator; a failure never stops the others."""
    parallel = max(1, min(parallel, len(steps)))
    threads = max(1, (os.cpu_count() or 1) // parallel)

    def one(step: LocalStep) -> StepOutcome:
        log.info("evaluating %s (log: %s)", step.checkpoint, step.log_path)
        outcome = _run_step(step, threads)
        status = (
            "done" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode}): {outcome.message}"
        )
        log.info("checkpoint %s %s in %.1f s", step.checkpoint, status, outcome.seconds)
        return outcome

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, steps))


# ---- the `benchcal run` subcommand -----------------------------------------------------------------


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
    done = [o for o in outcomes if o.returncode == 0]
    if len(done) < MIN_CHECKPOINTS:
        print(
            f"only {len(done)} checkpoint(s) finished; the reducer needs at least {MIN_CHECKPOINTS}. "
            "Fix the failures and re-run (finished work is kept)."
        )
        return EXIT_CRASH if failed else EXIT_OK
    report = layout.report_dir(out_root)
    argv = reduce_command(
        run_spec,
        out_dir=str(report),
        inputs=str(layout.checkpoints_dir(out_root)),
        figures=not args.no_figures,
    )
    print(flush=True)
    # in this process, through the same CLI: the argv a reducer Job would get, minus the program name
    rc = benchcal_main(argv[1:])
    if rc != EXIT_OK:
        return rc
    print(f"\nreport: {report / 'report.md'}  ({time.monotonic() - started:.0f} s)")
    return EXIT_CRASH if failed else EXIT_OK
