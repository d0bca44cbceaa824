"""benchcal.history: entries from a classification, a bounded idempotent extend, the change lines."""

from __future__ import annotations

import json

import pytest

from benchcal import history
from benchcal.classification import MAX_BENCHMARKS, BenchmarkVerdict, StatusClassification
from benchcal.errors import BadInput
from benchcal.history import HistoryEntry, Verdict, changes, extend, last_change, make_entry, next_generation

PAIRS = [("piqa", 0), ("piqa", 5), ("copa", 0)]


def _cls(**groups: str | tuple[str, int]) -> StatusClassification:
    verdicts = []
    for name, g in groups.items():
        group, shots = (g, None) if isinstance(g, str) else g
        verdicts.append(BenchmarkVerdict(name, group, shots, confidence=0.9))
    return StatusClassification.from_verdicts(verdicts)


def _entry(generation: int, n: int, pairs=PAIRS, **groups) -> HistoryEntry:
    ckpts = [f"c{i}" for i in range(n)]
    return make_entry(_cls(**groups), generation=generation, checkpoints=ckpts, pairs=pairs)


def test_an_entry_holds_verdicts_shots_and_the_checkpoints_it_reduced():
    e = _entry(3, 5, piqa=("robust", 5), copa="noise")
    assert e.generation == 3 and e.count == 5 and e.checkpoints == ("c0", "c1", "c2", "c3", "c4")
    assert e.verdicts == (Verdict("copa", "noise"), Verdict("piqa", "robust", 5))  # by name
    assert e.to_status() == {
        "generation": 3,
        "inputs": e.inputs,
        "checkpoints": 5,
        "checkpointNames": ["c0", "c1", "c2", "c3", "c4"],
        "benchmarks": [
            {"name": "copa", "group": "noise"},
            {"name": "piqa", "group": "robust", "recommendedShots": 5},
        ],
        "truncated": False,
    }
    assert HistoryEntry.from_status(e.to_status()) == e
    assert len(e.inputs) == 16 and e.inputs == history.inputs_digest(reversed(e.checkpoints), PAIRS[::-1])


def test_the_inputs_digest_tells_new_checkpoints_and_new_shots_apart():
    base = history.inputs_digest(["a", "b", "c"], PAIRS)
    assert history.inputs_digest(["a", "b", "c", "d"], PAIRS) != base
    assert history.inputs_digest(["a", "b"], PAIRS) != base  # a removed checkpoint
    assert history.inputs_digest(["a", "b", "c"], [*PAIRS, ("copa", 3)]) != base  # a new shot count


def test_extend_appends_in_generation_order_and_is_idempotent():
    first = _entry(1, 3, piqa="noise", copa="noise")
    second = _entry(2, 5, piqa="robust", copa="noise")
    h = extend(extend((), first), second)
    assert [e.generation for e in h] == [1, 2]
    assert extend(h, second) == h  # the reducer re-ran on the same inputs: nothing added
    assert extend(extend(h, first), first) == extend(h, first) == h
    # a late reducer of an older generation lands in its place, not at the end
    late = _entry(0, 2, pairs=PAIRS[:1], piqa="inconclusive")
    assert [e.generation for e in extend(h, late)] == [0, 1, 2]


def test_same_inputs_under_a_later_generation_collapse_into_one_entry():
    """A spec change that touched no input (e.g. suspend) bumps the generation, not the history."""
    h = extend((), _entry(1, 3, piqa="noise"))
    again = _entry(2, 3, piqa="noise")
    assert again.inputs == h[-1].inputs
    assert extend(h, again) == (again,)
    # a removed checkpoint added back is history, not a duplicate: A, B, A stays three entries
    h = extend(extend(h, _entry(2, 4, piqa="robust")), _entry(3, 3, piqa="noise"))
    assert [e.count for e in h] == [3, 4, 3]


def test_extend_keeps_the_newest_entries_up_to_the_limit():
    h: tuple[HistoryEntry, ...] = ()
    for g in range(1, 30):
        h = extend(h, _entry(g, g + 2, piqa="noise"))
    assert len(h) == history.MAX_ENTRIES and h[0].generation == 30 - history.MAX_ENTRIES
    assert [e.generation for e in extend(h, _entry(40, 3, piqa="noise"), limit=3)] == [28, 29, 40]
    with pytest.raises(BadInput, match="limit"):
        extend(h, h[-1], limit=0)


def test_changes_name_the_benchmark_both_verdicts_and_checkpoint_counts():
    h = extend(
        extend((), _entry(1, 3, piqa="noise", copa="noise")), _entry(2, 5, piqa="robust", copa="noise")
    )
    h = extend(h, _entry(3, 6, piqa=("shot_dependent", 5), copa="noise", arc="robust"))  # arc: new, no change
    assert changes(h) == [
        "piqa: noise (3 ckpts) → robust (5 ckpts)",
        "piqa: robust (5 ckpts) → shot_dependent (6 ckpts)",
    ]
    assert changes(h[:1]) == [] and changes(()) == []
    assert last_change(h) == "piqa: robust (5 ckpts) → shot_dependent (6 ckpts)"
    assert last_change(h[:1]) == ""
    steady = extend(h, _entry(4, 7, piqa=("shot_dependent", 5), copa="noise", arc="robust"))
    assert last_change(steady) == "no verdict changed (6 → 7 ckpts)"


def test_last_change_is_bounded_and_says_how_many_it_left_out():
    names = [f"benchmark_with_a_long_name_{i:02d}" for i in range(20)]
    h = extend(
        extend((), _entry(1, 3, **dict.fromkeys(names, "noise"))),
        _entry(2, 5, **dict.fromkeys(names, "robust")),
    )
    line = last_change(h)
    assert len(line) <= history.LAST_CHANGE_MAX and line.startswith(names[0] + ": noise (3 ckpts)")
    shown = line.count("→")
    assert line.endswith(f"; +{20 - shown} more") and shown >= 1
    assert len(last_change(h, limit=40)) <= 40 and last_change(h, limit=40).endswith("; +20 more")


def test_next_generation_moves_only_when_the_inputs_change():
    assert next_generation((), "x") == 1
    h = extend((), _entry(4, 3, piqa="noise"))
    assert next_generation(h, h[-1].inputs) == 4
    assert next_generation(h, "other") == 5


def test_entries_are_bounded_like_the_status_classification():
    many = StatusClassification.from_verdicts(
        BenchmarkVerdict(f"b{i:03d}", "noise") for i in range(MAX_BENCHMARKS + 6)
    )
    e = make_entry(many, generation=1, checkpoints=["a", "b", "c"], pairs=[("b000", 0)])
    assert len(e.verdicts) == MAX_BENCHMARKS and e.truncated
    with pytest.raises(BadInput, match="longer than 40"):
        make_entry(many, generation=1, checkpoints=["x" * 41], pairs=[])
    with pytest.raises(BadInput, match="at most 128"):
        make_entry(many, generation=1, checkpoints=[f"c{i}" for i in range(129)], pairs=[])
    with pytest.raises(BadInput, match="--generation"):
        make_entry(many, generation=-1, checkpoints=["a"], pairs=[])


def test_reading_back_names_the_bad_field():
    good = _entry(1, 3, piqa="noise").to_status()
    assert history.from_status(None) == ()
    with pytest.raises(BadInput, match=r"status\.history: expected a list"):
        history.from_status({"generation": 1})
    with pytest.raises(BadInput, match=r"status\.history\[0\]\.benchmarks\[0\]\.group: 'great'"):
        history.from_status([{**good, "benchmarks": [{"name": "piqa", "group": "great"}]}])
    with pytest.raises(BadInput, match=r"status\.history\[1\]: missing field 'inputs'"):
        history.from_status([good, {k: v for k, v in good.items() if k != "inputs"} | {"generation": 2}])
    with pytest.raises(BadInput, match=r"\.checkpoints: 4 but 3 checkpointNames"):
        history.from_status([{**good, "checkpoints": 4}])


def test_the_local_file_round_trips_and_refuses_foreign_json():
    h = extend(extend((), _entry(1, 3, piqa="noise")), _entry(2, 5, piqa="robust"))
    text = history.file_text(h)
    assert json.loads(text)["schemaVersion"] == history.FILE_SCHEMA
    assert history.parse_file(text, "h.json") == h
    with pytest.raises(BadInput, match=r"h\.json: invalid JSON at line 1"):
        history.parse_file("{nope", "h.json")
    with pytest.raises(BadInput, match="not a benchcal history file"):
        history.parse_file('{"history": []}', "h.json")
