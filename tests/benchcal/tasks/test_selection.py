"""benchcal.tasks.selection: the --tasks/--shots syntax, both forms, and the pairs round trip."""

from __future__ import annotations

import pytest

from benchcal.errors import BadInput
from benchcal.tasks.registry import get_task, resolve_tasks
from benchcal.tasks.selection import (
    DEFAULT_SHOTS,
    format_pairs,
    format_shots,
    grid,
    is_pairs,
    parse_pairs,
    parse_shots,
    select,
)


@pytest.mark.parametrize("text", ["", "0,x", "1,-1", "3,3", "1.5"])
def test_parse_shots_rejects(text):
    with pytest.raises(BadInput, match="--shots"):
        parse_shots(text)


def test_parse_shots_accepts():
    assert parse_shots("0, 1,3,5,10") == (0, 1, 3, 5, 10)
    assert format_shots((0, 1, 3)) == "0,1,3"


@pytest.mark.parametrize(
    "pairs",
    [
        [("arc_easy", (0, 3)), ("piqa", (0,))],
        [("copa", (10,))],
        [("jeopardy", (0, 1, 3, 5, 10)), ("arc_easy", (5, 0)), ("piqa", (1,))],  # order kept as given
    ],
)
def test_pairs_round_trip(pairs):
    text = format_pairs(pairs)
    assert is_pairs(text)
    assert parse_pairs(text) == pairs
    assert format_pairs(parse_pairs(text)) == text


def test_the_issue_example_and_whitespace():
    assert format_pairs([("arc_easy", (0, 3)), ("piqa", (0,))]) == "arc_easy:0,3;piqa:0"
    assert parse_pairs(" arc_easy : 0, 3 ; piqa:0 ;") == [("arc_easy", (0, 3)), ("piqa", (0,))]


@pytest.mark.parametrize(
    "text", ["a,b", "all", "category:world_knowledge", "preset:gauntlet-v0.1", "arc_easy"]
)
def test_selector_forms_are_not_pairs(text):
    assert not is_pairs(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arc_easy:0,3,piqa", "not BENCHMARK:SHOTS"),
        ("arc_easy:;piqa:0", "not BENCHMARK:SHOTS"),
        ("arc_easy:0;arc_easy:3", "listed twice"),
        ("arc_easy:0,0", "repeats a shot count"),
        (";", "empty"),
    ],
)
def test_malformed_pairs_name_the_item(text, message):
    with pytest.raises(BadInput, match=message):
        parse_pairs(text)


def test_select_pairs_and_selector_forms_mean_the_same_pairs():
    pairs = select("arc_easy:0,3;piqa:0")
    assert [(t.name, k) for t, k in pairs] == [("arc_easy", 0), ("arc_easy", 3), ("piqa", 0)]
    assert pairs[0][0] == get_task("arc_easy")
    same = select("arc_easy,piqa", "0,3")
    assert [(t.name, k) for t, k in same] == [("arc_easy", 0), ("arc_easy", 3), ("piqa", 0), ("piqa", 3)]
    default = select("copa")
    assert [k for _, k in default] == list(DEFAULT_SHOTS)
    assert grid(resolve_tasks("copa"), (1,)) == [(get_task("copa"), 1)]


def test_select_refuses_shots_with_pairs_and_unknown_names():
    with pytest.raises(BadInput, match="--shots cannot be combined"):
        select("arc_easy:0", "0,1")
    with pytest.raises(BadInput, match="did you mean arc_easy"):
        select("arc_easyy:0")
