"""The one results schema (``benchcal.results/v1``), shared by evaluator, reducer and operator.

Layout of an evaluator output directory (one per checkpoint; a local directory or an fsspec URL,
``benchcal.storage``)::

    DIR/results/<benchmark>/<k>shot.<config_key>.json    one TaskResult, written when that pair finishes
    DIR/examples/<benchmark>/<k>shot.<config_key>.jsonl  optional per-example outputs
    DIR/summary.json                                     CheckpointSummary of the latest invocation

A result's file name carries its ``config_key`` (the resume key: model content, task, shots,
seed, limit, ...), so results of different configurations live side by side and a re-run reuses
exactly the pairs whose key it asks for; nothing is deleted to make room. Files are written
atomically (``benchcal.storage``), so a killed process never leaves a torn result.

Files of the layout before keys (``<k>shot.json``) are left where they are and never reused: their
keys identified the model by file names and sizes only (docs/evaluator.md, "Resume").

The reducer's input table (long format) has one row per (checkpoint, benchmark, num_fewshot):
``TABLE_COLUMNS`` below; ``summary_rows`` turns a summary into those rows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from benchcal import storage
from benchcal.errors import BadInput
from benchcal.storage import Location

SCHEMA_VERSION = "benchcal.results/v1"
# Part of every pair's resume key (benchcal_eval.resume): bumped when the evaluator starts writing
# new numbers into a TaskResult, so a result stored before lacks nothing silently: it is recomputed.
# 2: continuous metrics, majority_rate and category_counts.
CONTENT_REVISION = 2

# Required and optional columns of the reducer's long-format input table (docs/reducer.md).
TABLE_COLUMNS = ("checkpoint", "flops", "benchmark", "num_fewshot", "accuracy", "n", "random_baseline")

# Continuous companions of the primary accuracy: per-(checkpoint, benchmark, shots) means over
# the scored examples, from the same forward pass as the accuracy, each with an optional
# standard error column "<name>_stderr". Value = which direction is better.
#   gold_prob      mean probability of the gold answer (MC/schema: the gold option's share of the
#                  options' probability as scored, i.e. a softmax over their mean per-token
#                  log-probs; LM: exp of the gold continuation's log-likelihood), in [0, 1]
#   gold_margin    mean margin of the gold option's mean per-token log-prob over the best wrong
#                  option's (nats per token; > 0 only where the example is correct). MC/schema only
#   bits_per_byte  of the gold continuation: -sum log2 p(gold tokens) / UTF-8 bytes of its text as
#                  scored, >= 0
# The evaluator computes them (benchcal_eval.continuous) from the log-probs its accuracy uses and
# writes them, with "majority_rate", into TaskResult.metrics under these names.
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
    config_key: str = ""  # the resume key (benchcal_eval.resume): also in the file's name
    metrics: dict[str, float] = field(default_factory=dict)  # secondary metrics (acc_sum, acc_char_norm, ...)
    # code benchmarks: how samples ran (network_isolated, pid_namespace, process_bound, namespaces)
    sandbox: dict[str, Any] = field(default_factory=dict)
    # Benchmarks averaged over categories (MMLU subjects): per category the primary metric's
    # {"correct": int, "n": int}. `accuracy` is the unweighted mean of correct/n over them and
    # `stderr` macro_average's (validated): the macro-average's real variance, not one binomial.
    category_counts: dict[str, dict[str, int]] = field(default_factory=dict)
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
        _check_metric_ranges(self.metrics, where)
        if self.category_counts:
            _check_category_counts(self, where)


# Allowed range of the table columns a TaskResult carries in `metrics` (the reducer checks the same).
_METRIC_RANGES = {
    "majority_rate": (0.0, 1.0),
    "gold_prob": (0.0, 1.0),
    "gold_margin": (-math.inf, math.inf),
    "bits_per_byte": (0.0, math.inf),
    **{f"{m}_stderr": (0.0, math.inf) for m in CONTINUOUS_METRICS},
}


def _check_metric_ranges(metrics: dict[str, Any], where: str) -> None:
    for name, (low, high) in _METRIC_RANGES.items():
        if name not in metrics:
            continue
        value = metrics[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not low <= value <= high:
            raise BadInput(
                f"{where}: metrics.{name} must be a finite number in [{low:g}, {high:g}], got {value!r}"
            )


def macro_average(counts: dict[str, dict[str, int]]) -> tuple[float, float]:
    """(unweighted mean over categories of a_c = correct/n, its standard error sqrt(sum_c v_c/n_c)/C).

    v_c is the unbiased per-item variance n_c a_c (1 - a_c) / (n_c - 1). The plug-in a_c (1 - a_c)
    is 0 for a category of one item and half the truth for two, so with MMLU's 57 subjects under a
    --limit of a few per subject it reported a standard error near 0 (the reducer then rejects
    the row or trusts it too much). A category of one item borrows the pooled variance of all
    items, n p (1 - p) / (n - 1) at the micro accuracy p; one item in all gives 0, as a binomial.
    """
    if not counts:
        raise ValueError("macro_average: no categories")
    total = sum(c["n"] for c in counts.values())
    micro = sum(c["correct"] for c in counts.values()) / total
    pooled = total * micro * (1 - micro) / (total - 1) if total > 1 else 0.0
    mean, var = 0.0, 0.0
    for c in counts.values():
        a, n = c["correct"] / c["n"], c["n"]
        mean += a
        var += (n * a * (1 - a) / (n - 1) if n > 1 else pooled) / n
    return mean / len(counts), math.sqrt(var) / len(counts)


def _check_category_counts(result: TaskResult, where: str) -> None:
    for cat, c in result.category_counts.items():
        keys_ok = isinstance(c, dict) and set(c) == {"correct", "n"}
        ints = keys_ok and all(isinstance(c[k], int) and not isinstance(c[k], bool) for k in c)
        if not ints or not 0 <= c["correct"] <= c["n"] or c["n"] < 1:
            raise BadInput(
                f"{where}: category_counts[{cat!r}] must be {{correct, n}} with integers 0 <= correct <= n, "
                f"n >= 1; got {c!r}"
            )
    total = sum(c["n"] for c in result.category_counts.values())
    if total != int(result.n):
        raise BadInput(f"{where}: category_counts add up to {total} examples, but n = {result.n}")
    mean, se = macro_average(result.category_counts)
    if not math.isclose(mean, float(result.accuracy), rel_tol=1e-9, abs_tol=1e-12):
        raise BadInput(
            f"{where}: accuracy {result.accuracy!r} is not the mean over category_counts ({mean!r})"
        )
    if not math.isclose(se, float(result.stderr), rel_tol=1e-6, abs_tol=1e-12):
        raise BadInput(
            f"{where}: stderr {result.stderr!r} is not the macro-average's standard error from "
            f"category_counts ({se!r})"
        )


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
    # what the invocation that wrote this summary did (a resumed run shows it recomputed nothing):
    # pairs found finished under the same resume key, pairs it computed, log-likelihood requests scored
    pairs_resumed: int = 0
    pairs_computed: int = 0
    requests_scored: int = 0
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
                pairs_resumed=int(data.get("pairs_resumed", 0)),
                pairs_computed=int(data.get("pairs_computed", 0)),
                requests_scored=int(data.get("requests_scored", 0)),
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

_KEY = re.compile(r"^[0-9a-f]{8,64}$")
_RESULT_NAME = re.compile(r"^(\d+)shot\.([0-9a-f]{8,64})\.json$")


def _keyed(name: str, key: str) -> str:
    if not _KEY.match(key or ""):
        raise ValueError(f"a result needs its config_key (hex), got {key!r}")
    return f"{name}.{key}"


def result_path(out_dir: Location, benchmark: str, num_fewshot: int, config_key: str) -> Location:
    return storage.join(
        out_dir, "results", benchmark, _keyed(f"{int(num_fewshot)}shot", config_key) + ".json"
    )


def examples_path(out_dir: Location, benchmark: str, num_fewshot: int, config_key: str) -> Location:
    return storage.join(
        out_dir, "examples", benchmark, _keyed(f"{int(num_fewshot)}shot", config_key) + ".jsonl"
    )


def summary_path(out_dir: Location) -> Location:
    return storage.join(out_dir, "summary.json")


def stored_keys(out_dir: Location, benchmark: str, num_fewshot: int) -> list[str]:
    """The config keys of every stored result of one pair (every configuration it was run with)."""
    keys = []
    for name in storage.list_dir(storage.join(out_dir, "results", benchmark)):
        m = _RESULT_NAME.match(name)
        if m and int(m.group(1)) == int(num_fewshot):
            keys.append(m.group(2))
    return keys


# ---- I/O -----------------------------------------------------------------------------------------


def atomic_write_text(path: Location, text: str) -> None:
    """Write a whole file so that readers never see a partial one (``benchcal.storage``)."""
    storage.write_text(path, text)


def write_task_result(out_dir: Location, result: TaskResult) -> Location:
    result.validate()
    path = result_path(out_dir, result.benchmark, result.num_fewshot, result.config_key)
    atomic_write_text(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: Location) -> Any:
    try:
        return json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def read_task_result(path: Location) -> TaskResult:
    return TaskResult.from_dict(read_json(path), str(path))


def find_task_result(
    out_dir: Location, benchmark: str, num_fewshot: int, config_key: str
) -> TaskResult | None:
    """The stored result of exactly this configuration of a pair, or None; unreadable: BadInput."""
    path = result_path(out_dir, benchmark, num_fewshot, config_key)
    if not storage.exists(path):
        return None
    result = read_task_result(path)
    if result.config_key != config_key or (result.benchmark, result.num_fewshot) != (benchmark, num_fewshot):
        raise BadInput(
            f"{path}: holds {result.benchmark} {result.num_fewshot}-shot with key {result.config_key}"
        )
    return result


def write_summary(out_dir: Location, summary: CheckpointSummary) -> Location:
    path = summary_path(out_dir)
    atomic_write_text(path, json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_summary(path: Location) -> CheckpointSummary:
    """A summary file, or the ``summary.json`` of a checkpoint directory."""
    if (isinstance(path, Path) and path.is_dir()) or not str(path).endswith(".json"):
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
