"""benchcal_eval.resume: the config key of a pair covers exactly what changes its score."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchcal.tasks.registry import load_task_file
from benchcal_eval.resume import config_key
from tests.evaluator.tiny_checkpoint import write_tiny_tasks


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return {t.name: t for t in load_task_file(write_tiny_tasks(tmp_path_factory.mktemp("tasks")))}


def test_config_key_covers_what_changes_scores(tasks, tmp_path):
    task = tasks["tiny_lm"]
    ident = {"content_sha256": "abc", "dtype": "float32"}  # ModelIdentity.key(dtype)
    base = config_key(ident, task, 3, seed=None, limit=None, max_length=256)
    assert base == config_key(ident, task, 3, seed=None, limit=None, max_length=256, sandbox={"timeout_s": 1})
    assert base == config_key(
        ident, task, 3, seed=1234, limit=None, max_length=256
    )  # the task's default seed
    changed = [
        config_key({**ident, "content_sha256": "abd"}, task, 3, seed=None, limit=None, max_length=256),
        config_key({**ident, "dtype": "bfloat16"}, task, 3, seed=None, limit=None, max_length=256),
        config_key(ident, task, 5, seed=None, limit=None, max_length=256),
        config_key(ident, task, 3, seed=7, limit=None, max_length=256),
        config_key(ident, task, 3, seed=None, limit=10, max_length=256),
        config_key(ident, task, 3, seed=None, limit=None, max_length=128),
        config_key(ident, task, 3, seed=None, limit=None, max_length=None),
        config_key(
            ident, replace(task, continuation_delimiter="\n"), 3, seed=None, limit=None, max_length=256
        ),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(Path(task.data_file).read_text())  # same content elsewhere: same key
    assert base == config_key(
        ident, replace(task, data_file=str(copy)), 3, seed=None, limit=None, max_length=256
    )
    copy.write_text(Path(task.data_file).read_text() + '{"context": "x", "continuation": "y"}\n')
    assert base != config_key(
        ident, replace(task, data_file=str(copy)), 3, seed=None, limit=None, max_length=256
    )


def test_config_key_covers_fewshot_sampling_where_it_changes_prompts(tasks):
    task = tasks["tiny_lm"]
    ident = {"content_sha256": "abc", "dtype": "float32"}

    def key(k, sampling):
        return config_key(ident, task, k, seed=None, limit=None, max_length=None, sampling=sampling)

    # results from before sampling modes existed were independent draws: their keys stay valid
    assert key(3, "independent") == config_key(ident, task, 3, seed=None, limit=None, max_length=None)
    assert len({key(3, "independent"), key(3, "nested"), key(3, "fixed")}) == 3
    assert key(0, "independent") == key(0, "nested") == key(0, "fixed")  # 0-shot prompts are the same


def test_sandbox_limits_are_part_of_a_code_pair_key_only(tmp_path):
    from benchcal_eval.sandbox import Limits

    (tmp_path / "code.jsonl").write_text("{}\n")
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n- {name: c, category: toy, task_type: code_evaluation, data_file: code.jsonl}\n"
    )
    [code] = load_task_file(tmp_path / "tasks.yaml")
    ident = {"content_sha256": "abc", "dtype": "float32"}
    keys = [
        config_key(ident, code, 0, seed=None, limit=None, max_length=None, sandbox=limits.key())
        for limits in (Limits(), Limits(timeout_s=3.0), Limits(memory_mb=256))
    ]
    assert len(set(keys)) == 3
