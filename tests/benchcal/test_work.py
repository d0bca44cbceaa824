"""benchcal.work: the keys that decide which work a grown CalibrationRun still needs."""

from __future__ import annotations

import copy

from benchcal import work
from benchcal.spec import parse_run

BODY = {
    "apiVersion": "benchcal.dev/v1alpha1",
    "kind": "CalibrationRun",
    "metadata": {"name": "g", "namespace": "ml", "uid": "u", "generation": 1},
    "spec": {
        "checkpoints": [
            {"name": "a", "model": {"builtin": "tiny-series/s1"}, "flops": 1e11},
            {"name": "b", "model": {"builtin": "tiny-series/s2"}, "flops": 2e11},
            {"name": "c", "model": {"builtin": "tiny-series/s3"}, "flops": 4e11},
        ],
        "suite": {"benchmarks": [{"name": "copa", "shots": [0, 1]}, {"name": "piqa"}], "shots": [0]},
    },
}


def run_with(**spec):
    body = copy.deepcopy(BODY)
    body["spec"].update(spec)
    return parse_run(body)


def test_pairs_and_their_key_ignore_order():
    run = run_with()
    assert work.run_pairs(run) == (("copa", 0), ("copa", 1), ("piqa", 0))
    assert work.pairs_key([("piqa", 0), ("copa", 1), ("copa", 0)]) == work.pairs_key(work.run_pairs(run))
    assert work.pairs_key([("copa", 0)]) != work.pairs_key([("copa", 1)])
    assert len(work.pairs_key([])) == work.KEY_LENGTH


def test_pair_list_round_trips_and_bad_text_covers_nothing():
    pairs = work.run_pairs(run_with())
    text = work.format_pair_list(pairs)
    assert text == "copa:0,1;piqa:0"
    assert work.parse_pair_list(text) == frozenset(pairs)
    assert work.parse_pair_list("") == frozenset() and work.parse_pair_list("copa") == frozenset()
    assert work.covers(pairs, pairs[:2]) and not work.covers(pairs[:2], pairs)


def test_reduction_key_follows_what_the_reducer_reads_only():
    base = work.reduction_key(run_with())
    more = [
        *BODY["spec"]["checkpoints"],
        {"name": "d", "model": {"builtin": "tiny-series/s4"}, "flops": 8e11},
    ]
    assert work.reduction_key(run_with(checkpoints=more)) != base
    assert work.reduction_key(run_with(checkpoints=list(reversed(BODY["spec"]["checkpoints"])))) == base
    assert work.reduction_key(run_with(classification={"alpha": 0.01})) != base
    assert work.reduction_key(run_with(suite={**BODY["spec"]["suite"], "shots": [0, 3]})) != base
    assert work.reduction_key(run_with(suspend=True, evaluator={"image": "x:1"})) == base
