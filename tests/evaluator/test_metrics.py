"""Scoring rules of the gauntlet, checked on hand-computed cases."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from benchcal_eval.metrics import (
    aggregate_binary,
    aggregate_mean,
    argmax_first,
    binomial_stderr,
    cut_at_stop,
    exact_match,
    extract_answer,
    lm_correct,
    mean_stderr,
    normalize_answer,
    pass_at_k,
    score_choices,
)
from benchcal_eval.requests import Instance, ScoreResult


def mc(continuations, gold, task_type="multiple_choice"):
    return Instance(
        index=0, task_type=task_type, contexts=("Q:",), continuations=tuple(continuations), gold=gold
    )


def test_mc_picks_lowest_mean_token_loss_not_summed_logprob():
    inst = mc([" a b c d", " x"], gold=0)
    # option 0: sum -4 over 4 tokens (mean -1); option 1: sum -2 over 1 token (mean -2).
    results = [ScoreResult(-4.0, 4, False), ScoreResult(-2.0, 1, False)]
    score = score_choices(inst, results)
    assert score.pred == 0 and score.correct
    assert score.pred_sum == 1  # the summed variant prefers the short option
    assert score.logprobs == (-4.0, -2.0)


def test_mc_char_normalisation_uses_continuation_length():
    inst = mc([" aaaaaaaaaa", " b"], gold=0)  # 11 vs 2 characters
    results = [ScoreResult(-5.0, 1, False), ScoreResult(-2.0, 1, False)]
    score = score_choices(inst, results)
    assert score.pred == 1 and score.pred_sum == 1
    assert score.pred_char == 0  # -5/11 > -2/2


def test_mc_ties_go_to_the_first_option():
    inst = mc([" a", " b", " c"], gold=2)
    score = score_choices(inst, [ScoreResult(-1.0, 1, False)] * 3)
    assert score.pred == 0 and not score.correct
    assert argmax_first([1.0, 3.0, 3.0]) == 1


def test_schema_scores_the_shared_continuation_under_each_context():
    inst = Instance(0, "schema", contexts=("A so A", "A so B"), continuations=(" went home",), gold=1)
    score = score_choices(inst, [ScoreResult(-6.0, 2, False), ScoreResult(-3.0, 2, False)])
    assert score.pred == score.pred_sum == score.pred_char == 1 and score.correct


def test_mc_rejects_mismatched_scores():
    with pytest.raises(ValueError):
        score_choices(mc([" a", " b"], gold=0), [ScoreResult(-1.0, 1, False)])


def test_lm_accuracy_needs_every_token_greedy():
    assert lm_correct(ScoreResult(-0.1, 3, True))
    assert not lm_correct(ScoreResult(-0.1, 3, False))


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("The  Answer_is: A-1!", "answer is 1"),
        ("an apple, the pear", "apple pear"),
        ("‘quoted’ `tick´", "quoted tick"),
        ("  Theory ", "theory"),  # 'the' only as a whole word
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_is_a_prefix_match_over_aliases():
    assert exact_match(" Onion soup and more", ["Bulb onion", "Onion"])
    assert not exact_match(" Garlic", ["Onion"])
    assert not exact_match("", ["Onion"])
    assert exact_match("the onion", ["Onion"])  # articles and case dropped


def test_exact_match_without_normalisation_only_strips():
    assert exact_match("  Onion.", ["Onion"], do_normalization=False)
    assert not exact_match("onion", ["Onion"], do_normalization=False)


def test_cot_answer_is_taken_after_the_last_delimiter_before_the_stop_string():
    out = " 16 - 3 = 13. The answer is 13\n\nQ: next question. The answer is 99"
    assert extract_answer(out, stop=["\n\n"], cot_delimiter="The answer is ") == "13"
    assert exact_match(out, ["13"], stop=["\n\n"], cot_delimiter="The answer is ")
    # Without the stop string (composer 0.17 behaviour) the hallucinated follow-up wins.
    assert not exact_match(out, ["13"], cot_delimiter="The answer is ")
    # No delimiter in the output: the whole output is compared.
    assert extract_answer(" 7", cot_delimiter="The answer is ") == " 7"


def test_cut_at_stop_uses_the_earliest_stop():
    assert cut_at_stop("abc\nQ: x\n\n", ["\n\n", "\nQ:"]) == "abc"
    assert cut_at_stop("abc", ["", "zz"]) == "abc"
    # the one cut used by generation too (engine.generation imports it from here)
    assert cut_at_stop("abc\n\nQ: x.", ["Q:", "\n\n"]) == "abc"
    assert cut_at_stop("no stop here", ["zz", ""]) == "no stop here"


def _pass_at_k_bruteforce(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 2, 1), (5, 2, 3), (5, 4, 2), (5, 5, 5), (7, 3, 4)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_bruteforce(n, c, k))


def test_pass_at_1_is_the_fraction_correct_and_bad_args_raise():
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20)
    for args in [(5, 6, 1), (5, 1, 0), (5, 1, 6), (0, 0, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*args)


def test_binomial_and_mean_stderr():
    assert binomial_stderr(0.5, 100) == pytest.approx(0.05)
    assert binomial_stderr(1.0, 10) == 0.0
    assert math.isnan(binomial_stderr(0.5, 0))
    assert mean_stderr([0.0, 1.0]) == pytest.approx(0.5)
    assert mean_stderr([1.0]) == 0.0


def test_aggregate_plain_accuracy():
    agg = aggregate_binary([True, False, True, True])
    assert agg.accuracy == 0.75 and agg.n == 4
    assert agg.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


def test_aggregate_macro_averages_categories_like_the_gauntlet():
    # category a: 3/3, category b: 0/1 -> macro 0.5, micro 0.75
    agg = aggregate_binary([True, True, True, False], ["a", "a", "a", "b"])
    assert agg.accuracy == pytest.approx(0.5)
    assert agg.metrics["acc_micro"] == pytest.approx(0.75)
    assert agg.metrics["n_categories"] == 2.0


def test_aggregate_mean_of_pass_at_k():
    agg = aggregate_mean([1.0, 0.0, 0.5])
    assert agg.accuracy == pytest.approx(0.5) and agg.n == 3
    with pytest.raises(ValueError):
        aggregate_mean([])
