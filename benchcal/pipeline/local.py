"""``benchcal run``: the operator's pipeline on one machine, without Kubernetes.

The same CalibrationRun YAML, the same evaluator command lines (``benchcal.commands``), run as
local subprocesses one after another (or a few in parallel), then the reducer in-process.
Every evaluator writes its results as it goes, so a failed or interrupted run loses nothing:
running the same command again resumes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchcal.commands import evaluate_commands
from benchcal.errors import BadInput
from benchcal.spec import CalibrationRun, Checkpoint

log = logging.getLogger("benchcal.run")

# The evaluator runs as `python -m benchcal.cli`, so a venv need not be on PATH.
EVALUATOR_EXECUTABLE = (sys.executable, "-m", "benchcal.cli")


@dataclass(frozen=True)
class LocalStep:
    checkpoint: str
    commands: list[list[str]]
    out_dir: Path
    log_path: Path


@dataclass
class StepOutcome:
    checkpoint: str
    returncode: int
    seconds: float
    log_path: Path
    message: str = ""


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
    if override is not None:
        return Path(override)
    if run.results is not None and run.results.kind == "path" and run.results.path:
        return Path(run.results.path)
    return Path("benchcal-results") / run.name


def plan_local(run: CalibrationRun, out_root: Path) -> list[LocalStep]:
    """One step per checkpoint, in FLOPs order (small models first: early feedback)."""
    order = sorted(range(len(run.checkpoints)), key=lambda i: run.checkpoints[i].flops)
    steps = []
    for i in order:
        ckpt = run.checkpoints[i]
        out_dir = out_root / "checkpoints" / ckpt.name
        commands = evaluate_commands(
            run,
            ckpt,
            model=local_model_argument(ckpt, i),
            out_dir=str(out_dir),
            executable=EVALUATOR_EXECUTABLE,
        )
        steps.append(LocalStep(ckpt.name, commands, out_dir, out_root / "logs" / f"{ckpt.name}.log"))
    return steps


def _run_step(step: LocalStep, threads: int) -> StepOutcome:
    step.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "BENCHCAL_NUM_THREADS": str(threads)}
    started = time.monotonic()
    rc = 0
    with open(step.log_path, "a", encoding="utf-8") as logf:
        for cmd in step.commands:
            logf.write(f"$ {' '.join(cmd)}\n")
            logf.flush()
            rc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, check=False).returncode
            if rc != 0:
                break
    message = ""
    if rc != 0:
        tail = step.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        message = " | ".join(tail)
    return StepOutcome(step.checkpoint, rc, time.monotonic() - started, step.log_path, message)


def evaluate_all(steps: list[LocalStep], parallel: int = 1) -> list[StepOutcome]:
    """Run every checkpoint's evaluator; a failure never stops the others."""
    parallel = max(1, min(parallel, len(steps)))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    outcomes: list[StepOutcome] = []

    def one(step: LocalStep) -> StepOutcome:
        log.info("evaluating %s (log: %s)", step.checkpoint, step.log_path)
        outcome = _run_step(step, threads)
        status = (
            "done" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode}): {outcome.message}"
        )
        log.info("checkpoint %s %s in %.1f s", step.checkpoint, status, outcome.seconds)
        return outcome

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(one, steps))
    return outcomes
