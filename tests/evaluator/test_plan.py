"""benchcal_eval.plan: a call's (benchmark, shots) pairs validated and loaded before any model work."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchcal.errors import BadInput
from benchcal.tasks.registry import load_task_file
from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from tests.evaluator.tiny_checkpoint import write_tiny_tasks


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return {t.name: t for t in load_task_file(write_tiny_tasks(tmp_path_factory.mktemp("tasks")))}


def test_prepare_rejects_bad_runs_before_any_work(tasks, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "a", "continuation": "b"}\n{"context": "a", \n')
    with pytest.raises(BadInput, match=r"bad\.jsonl:2"):
        prepare(grid([replace(tasks["tiny_lm"], data_file=str(bad))], (0,)))
    with pytest.raises(BadInput, match="shot"):
        prepare(grid([tasks["tiny_lm"]], (-1,)))
    with pytest.raises(BadInput, match="no benchmarks"):
        prepare(grid([], (0,)))
    with pytest.raises(BadInput, match="unavailable"):
        prepare(grid([replace(tasks["tiny_lm"], available=False, unavailable_reason="data missing")], (0,)))
    with pytest.raises(BadInput, match="listed twice"):
        prepare([(tasks["tiny_lm"], 0), (tasks["tiny_mc"], 1), (tasks["tiny_lm"], 0)])


def test_shards_split_the_pairs_without_overlap(tasks):
    specs = list(tasks.values())
    plans = [prepare(grid(specs, (0, 1)), shard=(i, 3)) for i in range(3)]
    everything = [(t.name, k) for t, k in prepare(grid(specs, (0, 1))).pairs]
    split = [[(t.name, k) for t, k in p.pairs] for p in plans]
    assert sorted(pair for part in split for pair in part) == sorted(everything)
    assert all(split), "every shard gets work when there are more pairs than shards"
    with pytest.raises(BadInput, match="shard index"):
        prepare(grid(specs, (0,)), shard=(3, 3))
