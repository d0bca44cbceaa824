"""``benchcal run [RUN.yaml]``: the operator's pipeline on one machine, without Kubernetes.

The same CalibrationRun YAML, the same command lines (``benchcal.commands``) and the same results
layout (``benchcal.layout``) as in the cluster: one ``benchcal evaluate`` subprocess per checkpoint
(one after another, or a few in parallel), then ``benchcal reduce`` in this process. Every
evaluator writes its results as it goes, so a failed or interrupted run loses nothing: running
the same command again resumes.

A run grows like a CalibrationRun in a cluster: append a checkpoint (or a benchmark, a shot count)
to the YAML and run it again: the finished pairs resume from their keyed result files (each
checkpoint's line says how many requests its evaluator scored: 0 for one already done), and the
reducer reduces exactly the spec's checkpoints now (a removed one is left out, its results kept
on disk). Each reduction extends the run's verdict history (``benchcal.layout.history_file``),
whose generation moves on only when the reduction's inputs changed.

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

from benchcal import layout, storage
from benchcal.app.cli import main as benchcal_main
from benchcal.app.run_display import RunDisplay
from benchcal.classification import MIN_CHECKPOINTS
from benchcal.commands import evaluate_command, reduce_command
from benchcal.errors import EXIT_CRASH, EXIT_OK, BadInput
from benchcal.progress import PROGRESS_FILE_ENV, read_snapshot
from benchcal.spec import CalibrationRun, Checkpoint, load_run

log = logging.getLogger("benchcal.run")

DEFAULT_RUN = "tiny-demo.yaml"
# The evaluator runs as `python -m benchcal`, so a venv need not be on PATH.
EXECUTABLE = (sys.executable, "-m", "benchcal")


@dataclass(frozen=True)
class LocalStep:
    checkpoint: str
    command: list[str]
    out_dir: Path
    log_path: Path
    progress_path: Path  # the evaluator's live state, for the display (benchcal.progress)


@dataclass
class StepOutcome:
    checkpoint: str
    returncode: int
    seconds: float
    log_path: Path
    message: str = ""
    requests_scored: int | None = None  # from the evaluator's last snapshot; None = it wrote none
    pairs_resumed: int = 0
    pairs_total: int = 0


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
    if m.kind == "uri" and storage.is_url(m.uri):
        storage.check_driver(m.uri, f"{where}.uri")  # copied to local disk once (benchcal_eval.fetch)
        return m.uri
    if m.kind == "pvc":
        raise BadInput(f"{where}.pvc: a PersistentVolumeClaim exists only in a cluster; locally use `path:`")
    raise BadInput(f"{where}.uri: {m.uri!r} cannot be read locally; use `path:` or a file:// URI")


def check_before_evaluating(run: CalibrationRun, out_root: Path) -> None:
    """What would fail after hours of evaluation, checked before the first checkpoint starts:
    every local model path exists and the root is a directory (enough checkpoints with distinct
    FLOPs for the reducer is already part of ``benchcal.spec.parse_run``)."""
    for i, ckpt in enumerate(run.checkpoints):
        m = ckpt.model
        if m.kind == "path" or (m.kind == "uri" and m.uri.startswith("file://")):
            local = Path(local_model_argument(ckpt, i)).expanduser()
            if not local.exists():
                field = "path" if m.kind == "path" else "uri"
                raise BadInput(f"spec.checkpoints[{i}].model.{field}: {str(local)!r} does not exist")
    if out_root.exists() and not out_root.is_dir():
        raise BadInput(f"results directory {str(out_root)!r} exists and is not a directory")


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
        logs = out_root / "logs"
        steps.append(
            LocalStep(
                ckpt.name, command, out_dir, logs / f"{ckpt.name}.log", logs / f"{ckpt.name}.progress.json"
            )
        )
    return steps


def _run_step(step: LocalStep, threads: int) -> StepOutcome:
    step.log_path.parent.mkdir(parents=True, exist_ok=True)
    # the last run's snapshot is no result, only a stale display: start from none
    step.progress_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "BENCHCAL_NUM_THREADS": str(threads),
        PROGRESS_FILE_ENV: str(step.progress_path),
    }
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
    outcome = StepOutcome(step.checkpoint, rc, time.monotonic() - started, step.log_path, message)
    snap = read_snapshot(step.progress_path)
    if snap is not None:
        outcome.pairs_resumed, outcome.pairs_total = snap.pairs_resumed, snap.pairs_total
        outcome.requests_scored = snap.requests_scored if rc == 0 else None
    return outcome


def outcome_line(outcome: StepOutcome) -> str:
    """``checkpoint s4 done in 9.1 s: 0/6 pairs resumed, 552 requests scored``."""
    if outcome.returncode != 0:
        return f"checkpoint {outcome.checkpoint} FAILED (exit {outcome.returncode}) in {outcome.seconds:.1f} s: {outcome.message}"
    line = f"checkpoint {outcome.checkpoint} done in {outcome.seconds:.1f} s"
    if outcome.requests_scored is None:
        return line
    return (
        f"{line}: {outcome.pairs_resumed}/{outcome.pairs_total} pairs resumed, "
        f"{outcome.requests_scored} requests scored"
    )


def evaluate_all(
    steps: list[LocalStep], parallel: int = 1, display: RunDisplay | None = None
) -> list[StepOutcome]:
    """Run every checkpoint's evaluator; a failure never stops the others."""
    parallel = max(1, min(parallel, len(steps)))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    say = display.event if display is not None else log.info

    def one(step: LocalStep) -> StepOutcome:
        say(f"evaluating {step.checkpoint} (log: {step.log_path})")
        if display is not None:
            display.started(step.checkpoint, step.progress_path)
        outcome = _run_step(step, threads)
        if display is not None:
            display.ended(step.checkpoint, outcome.seconds, outcome.returncode == 0)
        say(outcome_line(outcome))
        return outcome

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, steps))


def not_in_spec(run: CalibrationRun, out_root: Path) -> list[str]:
    """Checkpoint directories under the root that the spec no longer lists (removed: kept, not reduced)."""
    root = layout.checkpoints_dir(out_root)
    names = {c.name for c in run.checkpoints}
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in names)


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
    check_before_evaluating(run_spec, out_root)
    benchmarks = ", ".join(sorted({b.name for b in run_spec.suite.benchmarks}))
    print(
        f"CalibrationRun {run_spec.name}: {len(steps)} checkpoints x [{benchmarks}] -> {out_root}", flush=True
    )

    started = time.monotonic()
    with RunDisplay(total=len(steps)) as display:
        outcomes = evaluate_all(steps, parallel=args.parallel, display=display)
    failed = [o for o in outcomes if o.returncode != 0]
    for o in failed:
        print(f"checkpoint {o.checkpoint} failed (exit {o.returncode}); log: {o.log_path}\n  {o.message}")

    # Reduce exactly the checkpoints of this run that finished: a failed one is simply absent (its
    # results kept on disk), and other directories under the root (earlier runs) are not read.
    done = [o for o in outcomes if o.returncode == 0]
    if len(done) < MIN_CHECKPOINTS:
        print(
            f"only {len(done)} checkpoint(s) finished; the reducer needs at least {MIN_CHECKPOINTS}. "
            "Fix the failures and re-run (finished work is kept)."
        )
        return EXIT_CRASH if failed else EXIT_OK
    report = layout.report_dir(out_root)
    left_out = not_in_spec(run_spec, out_root)
    if left_out:
        print(f"not in {path.name} any more, not reduced (results kept): {', '.join(left_out)}")
    argv = reduce_command(
        run_spec,
        out_dir=str(report),
        inputs=[str(step.out_dir) for step, o in zip(steps, outcomes, strict=True) if o.returncode == 0],
        figures=not args.no_figures,
        history_file=str(layout.history_file(out_root)),
    )
    print(flush=True)
    # in this process, through the same CLI: the argv a reducer Job would get, minus the program name
    rc = benchcal_main(argv[1:])
    if rc != EXIT_OK:
        return rc
    print(f"\nreport: {report / 'report.md'}  ({time.monotonic() - started:.0f} s)")
    return EXIT_CRASH if failed else EXIT_OK
