"""Resume: the ``config_key`` of a (benchmark, shots) pair and the finished result it finds.

A re-run skips every pair whose result file carries the same ``config_key``: a hash of the model
identity, the task definition and its data's content, shots, seed, limit, max length and the
results schema version. Where a model ran (``device``) does not change scores and is left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from benchcal.errors import BadInput
from benchcal.results import SCHEMA_VERSION, TaskResult, read_task_result, result_path
from benchcal.tasks.registry import TaskSpec

log = logging.getLogger("benchcal.evaluate")

# Identity fields that do not change scores (where a model ran, not what it is).
_IDENTITY_IGNORED = ("device",)


@lru_cache(maxsize=256)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def task_fingerprint(task: TaskSpec) -> dict[str, Any]:
    """The task definition with its data's content hash instead of its (machine-specific) path."""
    spec = asdict(task)
    for key in ("data_file", "available", "unavailable_reason", "shots", "standard_shots"):
        spec.pop(key, None)  # where the data lives / presets: do not change a pair's scores
    st = os.stat(task.data_file)
    spec["data_sha256"] = _file_sha256(task.data_file, st.st_mtime_ns, st.st_size)
    return spec


def config_key(
    identity: dict[str, Any],
    task: TaskSpec,
    num_fewshot: int,
    *,
    seed: int | None,
    limit: int | None,
    max_length: int,
) -> str:
    payload = {
        "model": {k: v for k, v in identity.items() if k not in _IDENTITY_IGNORED},
        "task": task_fingerprint(task),
        "num_fewshot": num_fewshot,
        "seed": task.fewshot_random_seed if seed is None else seed,
        "limit": limit,
        "max_length": max_length,
        "schema": SCHEMA_VERSION,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def finished_result(out_dir: Path, task: TaskSpec, num_fewshot: int, key: str) -> TaskResult | None:
    """The stored result of a pair if it was computed with the same config; stale files are removed."""
    path = result_path(out_dir, task.name, num_fewshot)
    if not path.exists():
        return None
    try:
        result = read_task_result(path)
    except BadInput as exc:
        log.warning("ignoring unreadable result %s: %s", path, exc)
        result = None
    if result is not None and result.config_key == key:
        return result
    log.info("%s %d-shot: stored result has a different config; recomputing", task.name, num_fewshot)
    path.unlink(missing_ok=True)
    return None
