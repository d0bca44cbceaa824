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
    ident = {"source": "/m", "config_sha256": "abc", "dtype": "float32", "device": "cpu"}
    base = config_key(ident, task, 3, seed=None, limit=None, max_length=256)
    assert base == config_key({**ident, "device": "cuda"}, task, 3, seed=None, limit=None, max_length=256)
    assert base == config_key(
        ident, task, 3, seed=1234, limit=None, max_length=256
    )  # the task's default seed
    changed = [
        config_key({**ident, "config_sha256": "abd"}, task, 3, seed=None, limit=None, max_length=256),
        config_key({**ident, "dtype": "bfloat16"}, task, 3, seed=None, limit=None, max_length=256),
        config_key(ident, task, 5, seed=None, limit=None, max_length=256),
        config_key(ident, task, 3, seed=7, limit=None, max_length=256),
        config_key(ident, task, 3, seed=None, limit=10, max_length=256),
        config_key(ident, task, 3, seed=None, limit=None, max_length=128),
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
