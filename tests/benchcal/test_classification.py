"""benchcal.classification: the group vocabulary and the one typed shape of status.classification."""

from __future__ import annotations

import json

import jsonschema
import pytest

from benchcal.api import openapi_schema, to_json_schema
from benchcal.classification import (
    GROUPS,
    MAX_BENCHMARKS,
    MAX_NUMBERS,
    BenchmarkVerdict,
    StatusClassification,
)
from benchcal.errors import BadInput


def _status_schema() -> dict:
    return openapi_schema()["properties"]["status"]["properties"]["classification"]


def test_groups_are_the_crds_count_keys():
    assert list(_status_schema()["properties"]["counts"]["properties"]) == list(GROUPS)
    limits = _status_schema()["properties"]["benchmarks"]
    assert limits["maxItems"] == MAX_BENCHMARKS
    assert limits["items"]["properties"]["numbers"]["maxProperties"] == MAX_NUMBERS


def test_bounded_counts_every_benchmark_and_lists_the_first_by_name():
    verdicts = [
        BenchmarkVerdict(f"b{i:03d}", "robust", 3, {"spearman_rho": 0.9, "p_value": 0.01}) for i in range(70)
    ]
    out = StatusClassification.from_verdicts(reversed(verdicts)).to_status()
    assert len(out["benchmarks"]) == 64 and out["truncated"] is True and out["totalBenchmarks"] == 70
    assert out["counts"] == {
        "robust": 70,
        "shot_dependent": 0,
        "poorly_behaved": 0,
        "noise": 0,
        "inconclusive": 0,
    }
    assert out["benchmarks"][0] == {
        "name": "b000",
        "group": "robust",
        "recommendedShots": 3,
        "numbers": {"spearman_rho": 0.9, "p_value": 0.01},
    }
    small = StatusClassification.from_verdicts(verdicts[:2], max_benchmarks=1).to_status()
    assert [b["name"] for b in small["benchmarks"]] == ["b000"] and small["truncated"] is True
    assert small["counts"]["robust"] == 2 and "compositeMonotone" not in small


def test_to_status_fits_the_crd_schema_and_round_trips():
    status = StatusClassification.from_verdicts(
        [
            BenchmarkVerdict("arc_easy", "robust", 3, {"spearman": 0.9, "maxAccuracy": 0.61}),
            BenchmarkVerdict("jeopardy", "noise", None, {"maxAccuracy": 0.01}),
            BenchmarkVerdict("copa", "inconclusive"),
        ],
        composite_before=False,
        composite_after=True,
    )
    out = status.to_status()
    jsonschema.Draft4Validator(to_json_schema(_status_schema())).validate(out)
    assert out["compositeMonotone"] == {"before": False, "after": True}
    assert [b["name"] for b in out["benchmarks"]] == ["arc_easy", "copa", "jeopardy"]
    assert out["benchmarks"][2] == {"name": "jeopardy", "group": "noise", "numbers": {"maxAccuracy": 0.01}}
    assert StatusClassification.from_status(json.loads(json.dumps(out))) == status


def test_confidence_and_flags_are_typed_fields_that_round_trip():
    status = StatusClassification.from_verdicts(
        [
            BenchmarkVerdict("a", "robust", 0, confidence=0.97, borderline=False, latent_trend=False),
            BenchmarkVerdict("b", "noise", None, {"maxAccuracy": 0.26}, 0.61, True, True),
            BenchmarkVerdict("c", "inconclusive", numbers={"spearman": 0.5}),  # bootstrap off: no confidence
            BenchmarkVerdict("d", "poorly_behaved", confidence=0, borderline=False),
        ]
    )
    out = status.to_status()
    jsonschema.Draft4Validator(to_json_schema(_status_schema())).validate(out)
    assert out["benchmarks"][0] == {
        "name": "a",
        "group": "robust",
        "recommendedShots": 0,
        "confidence": 0.97,
        "borderline": False,
        "latentTrend": False,
    }
    assert out["benchmarks"][1] == {
        "name": "b",
        "group": "noise",
        "confidence": 0.61,
        "borderline": True,
        "latentTrend": True,
        "numbers": {"maxAccuracy": 0.26},
    }
    assert out["benchmarks"][2] == {"name": "c", "group": "inconclusive", "numbers": {"spearman": 0.5}}
    assert out["benchmarks"][3]["confidence"] == 0.0 and "latentTrend" not in out["benchmarks"][3]
    assert out["counts"]["inconclusive"] == 1 and out["counts"]["noise"] == 1
    back = StatusClassification.from_status(json.loads(json.dumps(out)))
    assert (
        back == status and back.benchmarks[1].latent_trend is True and back.benchmarks[2].confidence is None
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": "great"}, "group 'great'"),
        ({"group": "insufficient_data"}, "group 'insufficient_data'"),  # the old name: gone
        ({"confidence": 1.7}, r"confidence must be a number in \[0, 1\], got 1.7"),
        ({"confidence": -0.1}, r"confidence must be a number in \[0, 1\]"),
        ({"confidence": float("nan")}, r"confidence must be a number in \[0, 1\], got nan"),
        ({"confidence": True}, r"confidence must be a number in \[0, 1\]"),
        ({"confidence": "0.9"}, r"confidence must be a number in \[0, 1\]"),
        ({"borderline": "yes"}, "borderline must be true or false, got 'yes'"),
        ({"latent_trend": 1}, "latentTrend must be true or false, got 1"),
        ({"numbers": {"rho": float("nan")}}, "numbers.rho must be a finite number"),
        ({"numbers": {"label": "text"}}, "numbers.label must be a finite number"),
        ({"numbers": {f"n{i}": 1.0 for i in range(MAX_NUMBERS + 1)}}, f"at most {MAX_NUMBERS} numbers"),
    ],
)
def test_a_verdict_outside_the_crd_shape_is_refused(kwargs, message):
    with pytest.raises(BadInput, match=message):
        BenchmarkVerdict("x", **{"group": "robust", **kwargs})


def test_from_status_rejects_other_shapes_naming_the_field():
    good = StatusClassification.from_verdicts([BenchmarkVerdict("a", "robust")]).to_status()
    # the reducer's old dict-keyed shape is not accepted any more: one shape, the CRD's
    with pytest.raises(BadInput, match=r"status\.classification\.benchmarks: expected a list"):
        StatusClassification.from_status({**good, "benchmarks": {"a": {"group": "robust"}}})
    with pytest.raises(BadInput, match="missing field 'totalBenchmarks'"):
        StatusClassification.from_status({k: v for k, v in good.items() if k != "totalBenchmarks"})
    with pytest.raises(BadInput, match="counts"):
        StatusClassification.from_status({**good, "counts": {"great": 1}})
    with pytest.raises(BadInput, match="counts"):  # the pre-inconclusive count key
        StatusClassification.from_status({**good, "counts": {"insufficient_data": 0}})
    one = good["benchmarks"][0]
    with pytest.raises(BadInput, match="confidence must be a number in"):  # refused, not clamped
        StatusClassification.from_status({**good, "benchmarks": [{**one, "confidence": 1.2}]})
    with pytest.raises(BadInput, match="borderline must be true or false"):  # refused, not dropped
        StatusClassification.from_status({**good, "benchmarks": [{**one, "borderline": "no"}]})
