"""Shared builders for operator tests: a parsed run as the API server would return it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from benchcal import naming, work
from benchcal.spec import parse_run

RUN_BODY: dict[str, Any] = {
    "apiVersion": "benchcal.dev/v1alpha1",
    "kind": "CalibrationRun",
    "metadata": {"name": "tiny", "namespace": "ml", "uid": "uid-1", "generation": 1, "labels": {}},
    "spec": {
        "checkpoints": [
            {"name": "s1", "model": {"builtin": "tiny-series/s1"}, "flops": 1e15},
            {"name": "s2", "model": {"pvc": {"claimName": "ckpts", "path": "s2"}}, "flops": 2e15},
            {
                "name": "s3",
                "model": {
                    "hub": {"id": "org/m", "revision": "abc", "tokenSecret": {"name": "hf", "key": "token"}}
                },
                "flops": 4e15,
            },
        ],
        "suite": {"benchmarks": [{"name": "arc_easy"}, {"name": "jeopardy"}], "shots": [0, 3], "limit": 20},
    },
}


def body_with(**spec_overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(RUN_BODY)
    body["spec"].update(copy.deepcopy(spec_overrides))
    return body


@pytest.fixture
def run_body() -> dict[str, Any]:
    return copy.deepcopy(RUN_BODY)


@pytest.fixture
def make_run():
    def make(**spec_overrides: Any):
        return parse_run(body_with(**spec_overrides))

    return make


def _current_names(body: dict[str, Any]) -> tuple[dict[str, str], str]:
    """Job names of ``body``'s current work (they carry the keys of benchcal.work)."""
    run = parse_run(body)
    key = work.pairs_key(work.run_pairs(run))
    evaluators = {c.name: naming.evaluator_job_name(run.name, c.name, key) for c in run.checkpoints}
    return evaluators, naming.reducer_job_name(run.name, work.reduction_key(run))


EV, RED = _current_names(RUN_BODY)  # evaluator Job name by checkpoint, the reducer Job's name
PAIRS_KEY = work.pairs_key(work.run_pairs(parse_run(RUN_BODY)))
REDUCTION_KEY = work.reduction_key(parse_run(RUN_BODY))
