"""Test helper: a minimal in-memory TaskSpec for prompt and tokenisation tests."""

from __future__ import annotations

from benchcal.tasks.registry import TaskSpec


def spec(task_type: str, **options) -> TaskSpec:
    """A benchmark named "tiny" of the given type; its rows are passed in by the test, never read."""
    return TaskSpec(
        name="tiny",
        category="test",
        task_type=task_type,
        data_file="/nonexistent",
        random_baseline=0.0,
        **options,
    )
