"""The one results schema (``benchcal.results/v1``), shared by evaluator, reducer and operator.

Layout of an evaluator output directory (one per checkpoint)::

    DIR/results/<benchmark>/<num_fewshot>shot.json   one TaskResult, written when that pair finishes
    DIR/examples/<benchmark>/<num_fewshot>shot.jsonl optional per-example outputs
    DIR/summary.json                                 CheckpointSummary: every TaskResult + failures

Files are written atomically (temp file + rename), so a killed process never leaves a torn
result, and a re-run skips every pair whose file exists with the same ``config_key``.

The reducer's input table (long format) has one row per (checkpoint, benchmark, num_fewshot):
``TABLE_COLUMNS`` below; ``summary_rows`` turns a summary into those rows.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from benchcal.errors import BadInput

SCHEMA_VERSION = "benchcal.results/v1"

# Required and optional columns of the reducer's long-format input table (docs/reducer.md).
TABLE_COLUMNS = ("checkpoint", "flops", "benchmark", "num_fewshot", "accuracy", "n", "random_baseline")

# Continuous companions of the primary accuracy: per-(checkpoint, benchmark, shots) means over
# the scored examples, from the same forward pass as the accuracy, each with an optional
# standard error column "<name>_stderr". Value = which direction is better.
#   gold_prob      mean probability of the gold answer (MC: its normalised share of the choices'
#                  probability as scored; LM: exp of the gold continuation's log-likelihood), in [0, 1]
#   gold_margin    mean log-probability margin of the gold choice over the best wrong choice (nats)
#   bits_per_byte  of the gold continuation: -sum log2 p(gold tokens) / UTF-8 bytes, >= 0
CONTINUOUS_METRICS = {"gold_prob": "higher", "gold_margin": "higher", "bits_per_byte": "lower"}

TABLE_OPTIONAL_COLUMNS = (
    "category",  # overrides the registry's category
    "stderr",  # standard error of accuracy (a macro-average's is not binomial over n)
    "metric",  # name of the primary metric; must be higher-is-better
    "run",  # training run the checkpoint belongs to (checkpoints of one run: its intermediate ones)
    "majority_rate",  # accuracy of always giving the most frequent gold answer (binary tasks: majority class)
    *(c for m in CONTINUOUS_METRICS for c in (m, f"{m}_stderr")),
    "params",
    "tokens",
)

# Primary-metric names that are lower-is-better: a table must not give them as "accuracy".
LOWER_IS_BETTER_METRICS = (
    "loss",
    "nll",
    "xent",
    "cross_entropy",
    "perplexity",
    "ppl",
    "bits_per_byte",
    "bpb",
    "bits_per_char",
    "bpc",
    "error",
    "error_rate",
    "wer",
    "cer",
    "ter",
)


@dataclass
class TaskResult:
    """The score of one checkpoint on one (benchmark, shot count)."""

    benchmark: str
    category: str
    task_type: str
    num_fewshot: int
    metric: str  # name of the primary metric, e.g. "acc", "exact_match", "pass@1"
    accuracy: float  # value of the primary metric in [0, 1]
    n: int  # examples scored
    stderr: float  # standard error of `accuracy` (binomial, or bootstrap for pass@k)
    random_baseline: float
    truncated: int = 0  # examples whose prompt was left-truncated to the model's max length
    seconds: float = 0.0
    tokens_scored: int = 0  # tokens the model actually computed for this pair
    config_key: str = ""  # hash of (model identity, task config, shots, seed, limit): the resume key
    metrics: dict[str, float] = field(default_factory=dict)  # secondary metrics (acc_sum, acc_char_norm, ...)
    schema_version: str = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "result") -> TaskResult:
        _check_version(data, where)
        known = {f.name for f in fields(cls)}
        missing = [
            f.name
            for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING and f.name not in data
        ]
        if missing:
            raise BadInput(f"{where}: missing field(s) {', '.join(missing)}")
        obj = cls(**{k: v for k, v in data.items() if k in known})
        obj.validate(where)
        return obj

    def validate(self, where: str = "result") -> None:
        if not (0.0 <= float(self.accuracy) <= 1.0) or math.isnan(float(self.accuracy)):
            raise BadInput(f"{where}: accuracy must be in [0, 1], got {self.accuracy!r}")
        if int(self.n) <= 0:
            raise BadInput(f"{where}: n must be > 0, got {self.n!r}")
        if int(self.num_fewshot) < 0:
            raise BadInput(f"{where}: num_fewshot must be >= 0, got {self.num_fewshot!r}")


@dataclass
class Failure:
    """A (benchmark, shots) pair that failed; finished pairs are kept regardless."""

    benchmark: str
    num_fewshot: int
    error: str


@dataclass
class CheckpointSummary:
    checkpoint: str
    model: dict[str, Any]  # identity: source, revision, fingerprint, dtype, device
    flops: float | None = None
    results: list[TaskResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "summary") -> CheckpointSummary:
        _check_version(data, where)
        try:
            results = [
                TaskResult.from_dict(r, f"{where}: results[{i}]")
                for i, r in enumerate(data.get("results", []))
            ]
            failures = [Failure(**f) for f in data.get("failures", [])]
            return cls(
                checkpoint=str(data["checkpoint"]),
                model=dict(data.get("model", {})),
                flops=None if data.get("flops") is None else float(data["flops"]),
                results=results,
                failures=failures,
                started_at=data.get("started_at", ""),
                finished_at=data.get("finished_at", ""),
            )
        except KeyError as exc:
            raise BadInput(f"{where}: missing field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise BadInput(f"{where}: {exc}") from None


def _check_version(data: dict[str, Any], where: str) -> None:
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise BadInput(f"{where}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION!r})")


# ---- paths ---------------------------------------------------------------------------------------


def result_path(out_dir: str | Path, benchmark: str, num_fewshot: int) -> Path:
    return Path(out_dir) / "results" / benchmark / f"{int(num_fewshot)}shot.json"


def examples_path(out_dir: str | Path, benchmark: str, num_fewshot: int) -> Path:
    return Path(out_dir) / "examples" / benchmark / f"{int(num_fewshot)}shot.jsonl"


def summary_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / "summary.json"


# ---- I/O -----------------------------------------------------------------------------------------


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same directory and rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_task_result(out_dir: str | Path, result: TaskResult) -> Path:
    result.validate()
    path = result_path(out_dir, result.benchmark, result.num_fewshot)
    atomic_write_text(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def read_task_result(path: str | Path) -> TaskResult:
    return TaskResult.from_dict(read_json(path), str(path))


def load_task_results(out_dir: str | Path) -> list[TaskResult]:
    """Every finished (benchmark, shots) result under ``out_dir``, sorted."""
    files = sorted((Path(out_dir) / "results").glob("*/*shot.json"))
    return [read_task_result(p) for p in files]


def write_summary(out_dir: str | Path, summary: CheckpointSummary) -> Path:
    path = summary_path(out_dir)
    atomic_write_text(path, json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_summary(path: str | Path) -> CheckpointSummary:
    path = Path(path)
    if path.is_dir():
        path = summary_path(path)
    return CheckpointSummary.from_dict(read_json(path), str(path))


def summary_rows(summary: CheckpointSummary) -> list[dict[str, Any]]:
    """The reducer's long-format rows for one checkpoint."""
    return [
        {
            "checkpoint": summary.checkpoint,
            "flops": summary.flops,
            "benchmark": r.benchmark,
            "num_fewshot": r.num_fewshot,
            "accuracy": r.accuracy,
            "n": r.n,
            "random_baseline": r.random_baseline,
            "category": r.category,
            "stderr": r.stderr,
            "metric": r.metric,
            # the optional table columns the evaluator puts into TaskResult.metrics by name
            **{c: r.metrics[c] for c in _METRIC_COLUMNS if c in r.metrics},
        }
        for r in summary.results
    ]


_METRIC_COLUMNS = ("majority_rate", *(c for m in CONTINUOUS_METRICS for c in (m, f"{m}_stderr")))
