"""Per-example scoring rules and per-benchmark aggregation (pure functions on plain data).

The rules follow the Mosaic Eval Gauntlet (llm-foundry / composer 0.17):

- multiple_choice / schema: the option with the lowest mean per-token loss wins (first on ties);
  summed and per-character-normalised variants are reported as secondary metrics.
- language_modeling: correct iff every continuation token is the greedy argmax.
- generation: cut at the first stop string, keep the text after the last CoT delimiter, normalise,
  then prefix-match any accepted answer.
- code: unbiased pass@k over n sampled completions.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from benchcal.results import macro_average
from benchcal_eval.requests import Instance, ScoreResult

# Punctuation removed by the gauntlet's answer normalisation (string.punctuation plus typographic quotes).
_PUNCTUATION = frozenset(string.punctuation + "‘’´`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def argmax_first(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on ties (torch.argmin/argmax semantics)."""
    if not values:
        raise ValueError("argmax_first: empty sequence")
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


# ---- multiple choice / schema ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceScore:
    """One MC/schema example: which option each normalisation picks, and whether it is gold."""

    pred: int  # mean per-token log-prob (the gauntlet rule)
    pred_sum: int  # summed log-prob
    pred_char: int  # log-prob per character of the continuation
    gold: int
    logprobs: tuple[float, ...]

    @property
    def correct(self) -> bool:
        return self.pred == self.gold


def score_choices(instance: Instance, results: Sequence[ScoreResult]) -> ChoiceScore:
    """Score one multiple_choice (one result per choice) or schema (one per context) example."""
    if instance.gold is None:
        raise ValueError(f"example {instance.index}: multiple-choice example without gold")
    if not results:
        raise ValueError(f"example {instance.index}: no scored options")
    if instance.task_type == "schema":
        # The continuation is shared: char-normalisation divides every option by the same length.
        chars = [max(len(instance.continuations[0]) if instance.continuations else 1, 1)] * len(results)
    else:
        chars = [max(len(c), 1) for c in instance.continuations]
    if len(chars) != len(results):
        raise ValueError(f"example {instance.index}: {len(results)} scores for {len(chars)} options")
    summed = [r.logprob for r in results]
    mean = [r.logprob / max(r.n_tokens, 1) for r in results]
    per_char = [lp / c for lp, c in zip(summed, chars, strict=True)]
    return ChoiceScore(
        pred=argmax_first(mean),
        pred_sum=argmax_first(summed),
        pred_char=argmax_first(per_char),
        gold=int(instance.gold),
        logprobs=tuple(summed),
    )


# ---- language modelling ----------------------------------------------------------------------------


def lm_correct(result: ScoreResult) -> bool:
    """Teacher-forced greedy match over all continuation tokens (no partial credit)."""
    return bool(result.greedy)


# ---- generation: exact match -----------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Lower-case, '_' and punctuation to spaces, drop a/an/the, collapse whitespace."""
    text = text.lower().replace("_", " ")
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def cut_at_stop(text: str, stop: Iterable[str]) -> str:
    """Text before the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            pos = text.find(s)
            if 0 <= pos < cut:
                cut = pos
    return text[:cut]


def extract_answer(output: str, *, stop: Iterable[str] = (), cot_delimiter: str = "") -> str:
    """The part of a generation that is compared with the answers."""
    output = cut_at_stop(output, stop)
    if cot_delimiter and cot_delimiter in output:
        output = output.rsplit(cot_delimiter, 1)[1]
    return output


def exact_match(
    output: str,
    answers: Iterable[str],
    *,
    stop: Iterable[str] = (),
    cot_delimiter: str = "",
    do_normalization: bool = True,
) -> bool:
    """Correct iff the extracted, normalised output starts with some normalised answer."""
    norm = normalize_answer if do_normalization else str.strip
    got = norm(extract_answer(output, stop=stop, cot_delimiter=cot_delimiter))
    return any(got.startswith(norm(a)) for a in answers)


# ---- code: pass@k ----------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k), as a numerically stable product."""
    if not 0 <= c <= n or n <= 0 or k <= 0:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, n > 0, k > 0 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass_at_k: k={k} exceeds the {n} samples per problem")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


# ---- aggregation -----------------------------------------------------------------------------------


def binomial_stderr(p: float, n: int) -> float:
    """Standard error of a proportion p estimated from n independent examples."""
    if n <= 0:
        return float("nan")
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def mean_stderr(values: Sequence[float]) -> float:
    """Standard error of the mean of per-example scores (sample std, ddof=1)."""
    n = len(values)
    if n < 2:
        return 0.0
    mu = sum(values) / n
    var = sum((v - mu) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


@dataclass
class Aggregate:
    """Benchmark-level numbers for a TaskResult."""

    accuracy: float
    stderr: float
    n: int
    metrics: dict[str, float] = field(default_factory=dict)
    # per category {"correct", "n"} of a category-averaged benchmark (TaskResult.category_counts)
    category_counts: dict[str, dict[str, int]] = field(default_factory=dict)


def aggregate_binary(correct: Sequence[bool], categories: Sequence[str | None] | None = None) -> Aggregate:
    """Accuracy of 0/1 outcomes; with categories, the gauntlet's unweighted mean over categories."""
    n = len(correct)
    if n == 0:
        raise ValueError("aggregate_binary: no examples")
    micro = sum(bool(c) for c in correct) / n
    if not categories or all(c is None for c in categories):
        return Aggregate(accuracy=micro, stderr=binomial_stderr(micro, n), n=n)
    groups: dict[str, list[bool]] = {}
    for ok, cat in zip(correct, categories, strict=True):
        groups.setdefault(cat or "", []).append(bool(ok))
    counts = {cat: {"correct": sum(v), "n": len(v)} for cat, v in groups.items()}
    # Var of a mean of independent category means: sum(var_c) / C^2 (per-category unbiased variances).
    macro, stderr = macro_average(counts)
    metrics = {"acc_micro": micro, "n_categories": float(len(counts))}
    return Aggregate(accuracy=macro, stderr=stderr, n=n, metrics=metrics, category_counts=counts)


def aggregate_mean(values: Sequence[float]) -> Aggregate:
    """Mean of per-example scores in [0, 1] (pass@k per problem)."""
    if not values:
        raise ValueError("aggregate_mean: no examples")
    return Aggregate(accuracy=sum(values) / len(values), stderr=mean_stderr(values), n=len(values))
