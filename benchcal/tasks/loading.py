"""Read a benchmark's JSONL (plain or gzip) into validated, stripped rows.

Every problem is reported as ``FILE:LINE: what is wrong`` (BadInput), because users bring their own
files through task YAMLs and a silent shape error would surface much later as a wrong score.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from benchcal.errors import BadInput
from benchcal.tasks.registry import BUILTIN_DATA_DIR, TaskSpec

MANIFEST = BUILTIN_DATA_DIR.parent / "manifest.json"


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _expect_str(row: dict, key: str, where: str, *, allow_empty: bool = False) -> str:
    if key not in row:
        raise BadInput(f"{where}: missing key '{key}' (keys present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, str):
        raise BadInput(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise BadInput(f"{where}: '{key}' is empty")
    return value


def _expect_str_list(
    row: dict, key: str, where: str, *, min_len: int, allow_empty: bool = False
) -> list[str]:
    if key not in row:
        raise BadInput(f"{where}: missing key '{key}' (keys present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where}: '{key}' must be a list of strings")
    if len(value) < min_len:
        raise BadInput(f"{where}: '{key}' needs at least {min_len} entries, got {len(value)}")
    if not allow_empty and any(not v.strip() for v in value):
        raise BadInput(f"{where}: '{key}' contains an empty string")
    return value


def _expect_gold(row: dict, n_options: int, where: str) -> int:
    gold = row.get("gold")
    if isinstance(gold, bool) or not isinstance(gold, int):
        raise BadInput(f"{where}: 'gold' must be an integer index, got {gold!r}")
    if not 0 <= gold < n_options:
        raise BadInput(
            f"{where}: 'gold' = {gold} is out of range for {n_options} options (0..{n_options - 1})"
        )
    return gold


def _validate(row: dict, task_type: str, has_categories: bool, where: str) -> int | None:
    """Check one row's shape; returns its option count (mc/schema) for the consistency check."""
    n_options = None
    if task_type == "language_modeling":
        _expect_str(row, "context", where)
        _expect_str(row, "continuation", where)
    elif task_type == "multiple_choice":
        _expect_str(row, "query", where)
        n_options = len(_expect_str_list(row, "choices", where, min_len=2))
        _expect_gold(row, n_options, where)
    elif task_type == "schema":
        n_options = len(_expect_str_list(row, "context_options", where, min_len=2))
        _expect_str(row, "continuation", where)
        _expect_gold(row, n_options, where)
    elif task_type == "generation_task_with_answers":
        _expect_str(row, "context", where)
        _expect_str(row, "answer", where)
        if "aliases" in row:
            _expect_str_list(row, "aliases", where, min_len=0, allow_empty=True)
        if "chain_of_thought" in row:
            _expect_str(row, "chain_of_thought", where, allow_empty=True)
    elif task_type == "code_evaluation":
        for key in ("task_id", "prompt", "entry_point", "canonical_solution", "language"):
            _expect_str(row, key, where)
        _expect_str(row, "test", where, allow_empty=True)
        inputs = _expect_str_list(row, "test_inputs", where, min_len=1, allow_empty=True)
        outputs = _expect_str_list(row, "test_outputs", where, min_len=1, allow_empty=True)
        if len(inputs) != len(outputs):
            raise BadInput(f"{where}: {len(inputs)} test_inputs but {len(outputs)} test_outputs")
    if has_categories:
        _expect_str(row, "category", where)
    return n_options


def _strip(row: dict) -> dict:
    # llm-foundry strips every top-level string value on load (strip_dataset=True).
    return {k: v.strip() if isinstance(v, str) else v for k, v in row.items()}


def read_rows(path: Path, task_type: str, has_categories: bool = False) -> list[dict[str, Any]]:
    """Parse and validate a JSONL file; code_evaluation rows are not stripped (as llm-foundry)."""
    rows: list[dict[str, Any]] = []
    first_options: tuple[int, int] | None = None  # (option count, line) of the first row
    has_cot: bool | None = None
    try:
        with _open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
                if not isinstance(row, dict):
                    raise BadInput(f"{where}: each line must be a JSON object, got {type(row).__name__}")
                n_options = _validate(row, task_type, has_categories, where)
                if n_options is not None:
                    if first_options is None:
                        first_options = (n_options, line_no)
                    elif n_options != first_options[0]:
                        raise BadInput(
                            f"{where}: {n_options} options, but line {first_options[1]} has "
                            f"{first_options[0]}; every row of a file must have the same number"
                        )
                if task_type == "generation_task_with_answers":
                    row_cot = "chain_of_thought" in row
                    if has_cot is None:
                        has_cot = row_cot
                    elif row_cot != has_cot:
                        raise BadInput(f"{where}: 'chain_of_thought' must be present in all rows or in none")
                rows.append(row if task_type == "code_evaluation" else _strip(row))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read data file ({exc})") from exc
    if not rows:
        raise BadInput(f"{path}: no examples (the file is empty)")
    return rows


@lru_cache(maxsize=8)
def _cached_rows(path: str, task_type: str, has_categories: bool) -> tuple[dict[str, Any], ...]:
    return tuple(read_rows(Path(path), task_type, has_categories))


def load_examples(task: TaskSpec) -> list[dict[str, Any]]:
    """The benchmark's rows in file order, stripped and validated for its task type."""
    if not task.available:
        raise BadInput(f"benchmark {task.name!r} is unavailable: {task.unavailable_reason}")
    rows = _cached_rows(task.data_file, task.task_type, task.has_categories)
    return [dict(r) for r in rows]  # callers may mutate their copy


@lru_cache(maxsize=1)
def _manifest_rows() -> dict[str, int]:
    try:
        doc = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(BUILTIN_DATA_DIR / f"{e['file']}.gz"): int(e["rows"]) for e in doc.get("files", [])}


def example_count(task: TaskSpec) -> int | None:
    """Number of examples (from the manifest for shipped data; counted for user files)."""
    if not task.available:
        return None
    known = _manifest_rows().get(task.data_file)
    if known is not None:
        return known
    with _open_text(Path(task.data_file)) as fh:
        return sum(1 for line in fh if line.strip())
