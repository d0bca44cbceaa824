"""What the runner's tests share: the tiny checkpoint and tiny tasks, and an engine that counts its
calls (not a test module)."""

from __future__ import annotations

from benchcal.tasks.registry import TaskSpec, load_task_file
from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from benchcal_eval.requests import EngineStats
from benchcal_eval.runner import run_checkpoint
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks

SCORED = ("tiny_mc", "tiny_lm", "tiny_schema")


def tiny_lm():
    from benchcal_eval.models import load_model

    return load_model(str(tiny_checkpoint_dir()), dtype="float32", device="cpu")


def tiny_tasks(directory) -> dict[str, TaskSpec]:
    return {t.name: t for t in load_task_file(write_tiny_tasks(directory))}


class CountingEngine:
    """The real engine, recording how many requests each call got."""

    def __init__(self, lm):
        from benchcal_eval.engine import ScoringEngine

        self.inner = ScoringEngine(lm, token_budget=512)
        self.calls: list[int] = []  # requests per engine call (a scoring pass or one generation pair)
        self.passes: list[list[int]] = []  # per scoring pass: requests per pair

    @property
    def stats(self) -> EngineStats:
        return self.inner.stats

    def score_groups(self, groups, *, progress=None, on_done=None):
        self.calls.append(sum(len(g) for g in groups))
        self.passes.append([len(g) for g in groups])
        return self.inner.score_groups(groups, progress=progress, on_done=on_done)

    def generate(self, requests, progress=None):
        self.calls.append(len(requests))
        return self.inner.generate(requests, progress)


def run_pairs(lm, tasks, names, shots, out, **kw):
    plan = prepare(grid([tasks[n] for n in names], shots), **kw)
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, plan, out, checkpoint="ck", flops=1e15)
    return summary, engine
