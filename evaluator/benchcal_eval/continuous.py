"""Continuous companions of accuracy, computed from the log-probs the accuracy was scored with.

A benchmark at chance on accuracy may already move on a continuous metric (the reducer's
latent-trend flag). Every number here is a function of the engine's ``ScoreResult`` for the
example's own requests, the same ones the accuracy uses: no extra forward pass.

Per example (``benchcal.results.CONTINUOUS_METRICS`` names them):

- ``gold_prob``: multiple_choice / schema: the gold option's share of the options' probability as
  scored, softmax over the options' mean per-token log-probs (the gauntlet's decision rule, so
  the option with the largest share is the one predicted); language_modeling: exp of the gold
  continuation's summed log-prob.
- ``gold_margin`` (multiple_choice / schema): mean per-token log-prob of the gold option minus
  that of the best wrong option, in nats per token; > 0 only where the example is correct.
- ``bits_per_byte``: -sum log p(gold continuation tokens) / (ln 2 * UTF-8 bytes of the gold
  continuation as tokenised, with any prefix space the tokeniser rule added). For schema the
  gold continuation is the shared one after the gold context.

Per pair: the mean and its standard error, like accuracy: over categories (MMLU subjects) the
unweighted mean of category means, se = sqrt(sum_c s_c^2 / n_c) / C with s_c the category's
sample standard deviation (a category of one example borrows the whole pair's). A standard error
is left out (never 0) when fewer than two examples make it undefined.

``majority_rate``: accuracy of always giving the most frequent gold answer, computable when every
example of a multiple_choice task offers the same answer set (BoolQ's yes/no): a model that always
says "yes" scores it without skill. Aggregated the way accuracy is (per category, then averaged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from benchcal_eval.metrics import aggregate_binary
from benchcal_eval.requests import Instance, ScoreResult
from benchcal_eval.tokenize import Encoded

LN2 = math.log(2.0)


@dataclass(frozen=True)
class ContinuousScore:
    """One example's continuous metrics; ``gold_margin`` is None for language modelling."""

    gold_prob: float
    bits_per_byte: float
    gold_margin: float | None = None

    def as_row(self) -> dict[str, float]:
        row = {"gold_prob": self.gold_prob, "bits_per_byte": self.bits_per_byte}
        if self.gold_margin is not None:
            row["gold_margin"] = self.gold_margin
        return row


def bits_per_byte(logprob: float, n_bytes: int) -> float:
    """-logprob (nats) in bits per UTF-8 byte of the scored text."""
    if n_bytes < 1:
        raise ValueError(f"bits_per_byte: the scored text has {n_bytes} bytes")
    return -logprob / (LN2 * n_bytes)


def choice_score(
    instance: Instance, results: Sequence[ScoreResult], n_bytes: Sequence[int]
) -> ContinuousScore:
    """A multiple_choice or schema example (one result and one byte count per option)."""
    if instance.gold is None or not 0 <= instance.gold < len(results):
        raise ValueError(
            f"example {instance.index}: gold {instance.gold!r} is not one of {len(results)} options"
        )
    if len(n_bytes) != len(results):
        raise ValueError(f"example {instance.index}: {len(n_bytes)} byte counts for {len(results)} options")
    gold = int(instance.gold)
    mean = [r.logprob / max(r.n_tokens, 1) for r in results]
    top = max(mean)
    weights = [math.exp(m - top) for m in mean]  # shifted: no overflow, the largest weight is 1
    wrong = [m for i, m in enumerate(mean) if i != gold]
    return ContinuousScore(
        gold_prob=weights[gold] / sum(weights),
        bits_per_byte=bits_per_byte(results[gold].logprob, n_bytes[gold]),
        gold_margin=mean[gold] - max(wrong) if wrong else None,
    )


def lm_score(result: ScoreResult, n_bytes: int) -> ContinuousScore:
    """A language_modeling example: the gold continuation is the only one."""
    return ContinuousScore(
        gold_prob=math.exp(result.logprob), bits_per_byte=bits_per_byte(result.logprob, n_bytes)
    )


def example_scores(
    task_type: str, instances: Sequence[Instance], encoded: Sequence[Encoded], scores: Sequence[ScoreResult]
) -> list[ContinuousScore]:
    """Per example, from the flat list of engine results (the requests of ``encoded`` in order)."""
    out: list[ContinuousScore] = []
    pos = 0
    for inst, enc in zip(instances, encoded, strict=True):
        n = len(enc.requests)
        if len(enc.continuation_bytes) != n:
            raise ValueError(f"example {inst.index}: encoded without continuation byte counts")
        mine = scores[pos : pos + n]
        pos += n
        if task_type == "language_modeling":
            out.append(lm_score(mine[0], enc.continuation_bytes[0]))
        else:
            out.append(choice_score(inst, mine, enc.continuation_bytes))
    if pos != len(scores):
        raise ValueError(f"{len(scores)} scores for {pos} requests")
    return out


def _variance(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mu = sum(values) / len(values)
    return sum((v - mu) ** 2 for v in values) / (len(values) - 1)


def mean_and_stderr(
    values: Sequence[float], categories: Sequence[str | None] | None = None
) -> tuple[float, float | None]:
    """The pair's mean (over categories: the mean of category means) and its standard error."""
    if not values:
        raise ValueError("mean_and_stderr: no examples")
    overall = _variance(values)
    if not categories or all(c is None for c in categories):
        mean = sum(values) / len(values)
        return mean, None if overall is None else math.sqrt(overall / len(values))
    groups: dict[str, list[float]] = {}
    for v, cat in zip(values, categories, strict=True):
        groups.setdefault(cat or "", []).append(v)
    mean = sum(sum(g) / len(g) for g in groups.values()) / len(groups)
    if overall is None:
        return mean, None
    var = sum((_variance(g) if len(g) > 1 else overall) / len(g) for g in groups.values())  # type: ignore[operator]
    return mean, math.sqrt(var) / len(groups)


def aggregate(
    scores: Sequence[ContinuousScore], categories: Sequence[str | None] | None = None
) -> dict[str, float]:
    """``TaskResult.metrics`` entries: each metric's mean and, where defined, ``<name>_stderr``."""
    out: dict[str, float] = {}
    columns = {
        "gold_prob": [s.gold_prob for s in scores],
        "gold_margin": [s.gold_margin for s in scores],
        "bits_per_byte": [s.bits_per_byte for s in scores],
    }
    for name, values in columns.items():
        if any(v is None for v in values):  # language modelling has no wrong options
            continue
        mean, se = mean_and_stderr(values, categories)  # type: ignore[arg-type]
        out[name] = mean
        if se is not None:
            out[f"{name}_stderr"] = se
    return out


def majority_rate(
    instances: Sequence[Instance], categories: Sequence[str | None] | None = None
) -> float | None:
    """Accuracy of always answering the most frequent gold answer, or None when the examples do
    not share one answer set (then no single answer exists that every example offers)."""
    if not instances or any(i.task_type != "multiple_choice" or i.gold is None for i in instances):
        return None
    answer_set = frozenset(c.strip() for c in instances[0].continuations)
    if len(answer_set) < 2 or any(
        frozenset(c.strip() for c in i.continuations) != answer_set for i in instances
    ):
        return None
    golds = [i.continuations[int(i.gold)].strip() for i in instances]  # type: ignore[arg-type]
    return max(aggregate_binary([g == answer for g in golds], categories).accuracy for answer in answer_set)


def pair_metrics(
    task_type: str,
    instances: Sequence[Instance],
    encoded: Sequence[Encoded],
    scores: Sequence[ScoreResult],
    categories: Sequence[str | None] | None = None,
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """(the pair's ``TaskResult.metrics`` entries, per-example records) for a scored task."""
    per_example = example_scores(task_type, instances, encoded, scores)
    metrics = aggregate(per_example, categories)
    rate = majority_rate(instances, categories)
    if rate is not None:
        metrics["majority_rate"] = rate
    return metrics, [s.as_row() for s in per_example]
