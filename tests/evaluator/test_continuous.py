"""Continuous metrics from the scoring log-probs: hand-computed values, aggregation, majority rate."""

from __future__ import annotations

import math

import pytest

from benchcal_eval import continuous
from benchcal_eval.requests import Instance, ScoreResult
from benchcal_eval.tokenize import Encoded


def _mc(gold: int, choices: tuple[str, ...], category: str | None = None, index: int = 0) -> Instance:
    return Instance(
        index=index,
        task_type="multiple_choice",
        contexts=("Q:",),
        continuations=choices,
        gold=gold,
        category=category,
    )


def test_choice_score_by_hand() -> None:
    # mean per-token log-probs: -2/2 = -1.0, -1.5/1 = -1.5, -6/3 = -2.0; gold is option 1
    results = [ScoreResult(-2.0, 2, False), ScoreResult(-1.5, 1, False), ScoreResult(-6.0, 3, False)]
    s = continuous.choice_score(_mc(1, ("a", "b", "c")), results, [4, 3, 5])
    share = math.exp(-1.5) / (math.exp(-1.0) + math.exp(-1.5) + math.exp(-2.0))
    assert s.gold_prob == pytest.approx(share, rel=1e-12)  # 0.3072...
    assert s.gold_prob == pytest.approx(0.30719589, abs=1e-8)
    assert s.gold_margin == pytest.approx(-0.5)  # -1.5 - max(-1.0, -2.0): wrong, and by how much
    assert s.bits_per_byte == pytest.approx(1.5 / (math.log(2) * 3))  # 0.7213 bits per byte
    right = continuous.choice_score(_mc(0, ("a", "b", "c")), results, [4, 3, 5])
    assert right.gold_margin == pytest.approx(0.5) and right.gold_prob > 0.5


def test_margin_is_positive_exactly_when_the_gauntlet_rule_picks_gold() -> None:
    from benchcal_eval.metrics import score_choices

    results = [ScoreResult(-3.0, 3, True), ScoreResult(-1.0, 1, True)]  # a tie at -1 per token
    for gold in (0, 1):
        inst = _mc(gold, ("x", "y"))
        s = continuous.choice_score(inst, results, [1, 1])
        assert s.gold_margin == 0.0 and s.gold_prob == pytest.approx(0.5)
        assert score_choices(inst, results).correct == (gold == 0)  # first option wins ties


def test_lm_score_by_hand() -> None:
    s = continuous.lm_score(ScoreResult(-4.2, 3, False), 7)
    assert s.gold_prob == pytest.approx(math.exp(-4.2))
    assert s.bits_per_byte == pytest.approx(4.2 / math.log(2) / 7)
    assert s.gold_margin is None and "gold_margin" not in s.as_row()


def test_example_scores_walk_the_flat_result_list_and_check_byte_counts() -> None:
    insts = [_mc(0, ("a", "b")), _mc(1, ("a", "b"), index=1)]
    encoded = [
        Encoded(requests=[None, None], generation=None, truncated=False, continuation_bytes=(2, 2)),  # type: ignore[list-item]
        Encoded(requests=[None, None], generation=None, truncated=False, continuation_bytes=(2, 3)),  # type: ignore[list-item]
    ]
    scores = [ScoreResult(-1.0, 1, True), ScoreResult(-2.0, 1, False)] * 2
    got = continuous.example_scores("multiple_choice", insts, encoded, scores)
    assert [g.gold_margin for g in got] == [1.0, -1.0]
    assert got[1].bits_per_byte == pytest.approx(2.0 / (math.log(2) * 3))
    bare = [Encoded(requests=[None, None], generation=None, truncated=False)] * 2  # type: ignore[list-item]
    with pytest.raises(ValueError, match="byte counts"):
        continuous.example_scores("multiple_choice", insts, bare, scores)


def test_mean_and_stderr_plain_and_over_categories() -> None:
    values = [1.0, 2.0, 3.0, 10.0]
    mean, se = continuous.mean_and_stderr(values)
    sd2 = sum((v - 4.0) ** 2 for v in values) / 3  # sample variance 16.667
    assert mean == 4.0 and se == pytest.approx(math.sqrt(sd2 / 4))
    # categories a = [1, 2, 3] (mean 2, s^2 = 1) and b = [10] (one example: borrows the overall s^2)
    mean, se = continuous.mean_and_stderr(values, ["a", "a", "a", "b"])
    assert mean == pytest.approx((2.0 + 10.0) / 2)
    assert se == pytest.approx(math.sqrt(1.0 / 3 + sd2 / 1) / 2)
    assert continuous.mean_and_stderr([0.5]) == (0.5, None)  # undefined, not 0


def test_aggregate_leaves_out_undefined_stderrs_and_lm_margins() -> None:
    lm = [continuous.ContinuousScore(0.2, 1.0), continuous.ContinuousScore(0.4, 3.0)]
    out = continuous.aggregate(lm)
    assert set(out) == {"gold_prob", "gold_prob_stderr", "bits_per_byte", "bits_per_byte_stderr"}
    assert out["gold_prob"] == pytest.approx(0.3) and out["bits_per_byte_stderr"] == pytest.approx(1.0)
    one = continuous.aggregate([continuous.ContinuousScore(0.2, 1.0, 0.3)])
    assert one == {"gold_prob": 0.2, "bits_per_byte": 1.0, "gold_margin": 0.3}


def test_majority_rate_needs_one_answer_set() -> None:
    yes_no = [_mc(g, ("no", "yes"), index=i) for i, g in enumerate([1, 1, 1, 0])]
    assert continuous.majority_rate(yes_no) == pytest.approx(0.75)
    swapped = [*yes_no, _mc(0, (" yes", "no"), index=4)]  # same set, other order and spacing: "yes"
    assert continuous.majority_rate(swapped) == pytest.approx(0.8)
    varied = [_mc(0, ("red", "blue")), _mc(1, ("cat", "dog"))]  # PIQA-like: no answer every example offers
    assert continuous.majority_rate(varied) is None
    # categories: "always yes" scores 1.0 on a, 0.0 on b -> 0.5; "always no" 0.0 and 1.0 -> 0.5
    cats = [_mc(1, ("no", "yes")), _mc(1, ("no", "yes")), _mc(0, ("no", "yes"))]
    assert continuous.majority_rate(cats, ["a", "a", "b"]) == pytest.approx(0.5)
    assert continuous.majority_rate(cats) == pytest.approx(2 / 3)
    schema = [Instance(index=0, task_type="schema", contexts=("a", "b"), continuations=("x",), gold=0)]
    assert continuous.majority_rate(schema) is None
