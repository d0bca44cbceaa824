"""Resume: the ``config_key`` of a (benchmark, shots) pair and the finished result it finds.

A re-run skips every pair that has a result stored under the same ``config_key``: a hash of the
model's content (``benchcal_eval.identity``: weights, tokenizer and config bytes, the GGUF file,
or the hub commit) and dtype, the task definition and its data's content, shots, seed, limit,
the requested max length, the few-shot sampling mode where it changes prompts (k > 0;
``independent`` adds nothing, so results from before the modes existed keep their keys), the
sandbox limits of code benchmarks and the results schema version.
Where a model ran (path, device) does not change scores and is left out. Results of other keys
are never touched: they stay on disk beside the new ones (``benchcal.results``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from benchcal.errors import BadInput
from benchcal.results import CONTENT_REVISION, SCHEMA_VERSION, TaskResult, find_task_result
from benchcal.storage import Location
from benchcal.tasks.registry import TaskSpec

log = logging.getLogger("benchcal.evaluate")


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
    model_key: dict[str, Any],
    task: TaskSpec,
    num_fewshot: int,
    *,
    seed: int | None,
    limit: int | None,
    max_length: int | None,
    sandbox: dict[str, Any] | None = None,
    sampling: str = "independent",
) -> str:
    """The resume key of one pair (32 hex digits). ``model_key``: ``ModelIdentity.key(dtype)``;
    ``max_length``: as requested (None: the model's own context, which its content fixes);
    ``sandbox``: ``Limits.key()``, for code benchmarks only."""
    payload: dict[str, Any] = {
        "model": model_key,
        "task": task_fingerprint(task),
        "num_fewshot": num_fewshot,
        "seed": task.fewshot_random_seed if seed is None else seed,
        "limit": limit,
        "max_length": max_length,
        "schema": SCHEMA_VERSION,
        "content": CONTENT_REVISION,
    }
    if num_fewshot > 0 and sampling != "independent":  # keys of independent (older) results stay valid
        payload["fewshot_sampling"] = sampling
    if task.task_type == "code_evaluation" and sandbox is not None:
        payload["sandbox"] = sandbox
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def finished_result(out_dir: Location, task: TaskSpec, num_fewshot: int, key: str) -> TaskResult | None:
    """The stored result of a pair computed with exactly this key, or None. Never deletes anything:
    an unreadable file is reported and recomputed (the new result replaces it)."""
    try:
        return find_task_result(out_dir, task.name, num_fewshot, key)
    except BadInput as exc:
        log.warning("ignoring unreadable result (it will be recomputed): %s", exc)
        return None
