"""Load: 50 CalibrationRuns x 5 checkpoints applied at once, with a per-run concurrency limit.

The operator and the API server are real; the job runner runs a trivial stand-in command in
place of the evaluator and reducer (see tests/e2e/load.py). benchmarks/bench_operator_load.py
records the numbers (peak operator memory, Job-completion-to-status latency).
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E
from tests.e2e.load import run_load, stand_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNS, CHECKPOINTS, LIMIT = 50, 5, 2


@pytest.fixture
def loaded(tmp_path):
    world = E2E(
        tmp_path,
        command_override=stand_in,
        max_parallel_pods=16,
        operator_env={"BENCHCAL_MAX_RUNNING_CHECKPOINTS": str(LIMIT)},
    )
    if world.cluster is not None:
        world.cluster.server.api.store.max_history = 500000  # analyse() reads the whole history
    try:
        yield world
    finally:
        world.close()


def test_fifty_runs_at_once(loaded: E2E) -> None:
    if not loaded.local:
        pytest.skip("the stand-in command needs the local job runner")
    report = run_load(loaded, RUNS, CHECKPOINTS, timeout=600)
    assert report.phases == {"Succeeded": RUNS}, report.phases
    creations = report.job_creations
    assert len(creations) == RUNS * (CHECKPOINTS + 1)
    assert set(creations.values()) == {1}, {k: v for k, v in creations.items() if v != 1}
    assert report.max_concurrent_evaluators <= LIMIT
    assert len(report.latencies_s) == RUNS * (CHECKPOINTS + 1)
