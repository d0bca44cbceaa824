"""benchcal.publish: pure ConfigMap/status builders (the API calls: tests/operator/test_identity.py)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from benchcal.api import openapi_schema, to_json_schema
from benchcal.classification import BenchmarkVerdict, StatusClassification
from benchcal.errors import BadInput
from benchcal.publish import merge_summaries, run_status_patch, split_target, summary_configmap
from benchcal.results import CheckpointSummary, TaskResult


def result(bench, shots, acc=0.5):
    return TaskResult(bench, "world_knowledge", "multiple_choice", shots, "acc", acc, 100, 0.05, 0.25)


def summary(ckpt="s1", flops=1e15, results=(), started="", finished=""):
    return CheckpointSummary(ckpt, {"source": "x"}, flops, list(results), [], started, finished)


def test_split_target():
    assert split_target("ml/tiny", "--write-status") == ("ml", "tiny")
    for bad in ("tiny", "/tiny", "ml/", "a/b/c"):
        with pytest.raises(BadInput, match="--write-status"):
            split_target(bad, "--write-status")


def test_configmap_carries_run_labels_and_owner_from_env():
    cm = summary_configmap(
        summary(results=[result("arc_easy", 0)]),
        "ml",
        "tiny-summary-s1",
        {"BENCHCAL_RUN": "tiny", "BENCHCAL_RUN_UID": "u1", "BENCHCAL_CHECKPOINT": "s1"},
    )
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "benchcal",
        "benchcal.dev/run": "tiny",
        "benchcal.dev/component": "summary",
        "benchcal.dev/checkpoint": "s1",
    }
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "u1"
    back = CheckpointSummary.from_dict(json.loads(cm["data"]["summary.json"]))
    assert back.results[0].benchmark == "arc_easy"
    bare = summary_configmap(summary(), "ml", "x", {})
    assert bare["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "benchcal",
        "benchcal.dev/component": "summary",
    }
    assert "ownerReferences" not in bare["metadata"]


def test_configmap_refuses_oversized_summaries():
    big = summary(results=[result(f"b{i:05d}", 0) for i in range(4000)])
    with pytest.raises(BadInput, match="ConfigMap limit"):
        summary_configmap(big, "ml", "x", {})


def test_merge_summaries_joins_shards_and_orders_by_flops():
    shards = [
        summary("s2", 2e15, [result("a", 0)], "2026-01-02", "2026-01-03"),
        summary("s1", 1e15, [result("a", 0)]),
        summary("s2", 2e15, [result("b", 0), result("a", 0)], "2026-01-01", "2026-01-04"),
    ]
    merged = merge_summaries(shards)
    assert [s.checkpoint for s in merged] == ["s1", "s2"]
    assert sorted(r.benchmark for r in merged[1].results) == ["a", "b"]
    assert (merged[1].started_at, merged[1].finished_at) == ("2026-01-01", "2026-01-04")
    assert len(shards[0].results) == 1  # inputs untouched


def test_run_status_patch_with_results_ref():
    empty = StatusClassification.from_verdicts([])
    patch = run_status_patch(empty, {"uri": "/r/report", "sha256": "ab", "size": 12})
    assert patch["status"]["resultsRef"] == {"uri": "/r/report", "sha256": "ab", "size": 12}
    assert "resultsRef" not in run_status_patch(empty, None)["status"]


def test_run_status_patch_carries_the_typed_classification_as_the_crd_wants_it():
    classification = StatusClassification.from_verdicts(
        [BenchmarkVerdict("arc_easy", "robust", 3, {"spearman": 0.9})],
        composite_before=False,
        composite_after=True,
    )
    patch = run_status_patch(classification, None)
    assert patch == {"status": {"classification": classification.to_status()}}
    schema = to_json_schema(openapi_schema()["properties"]["status"]["properties"]["classification"])
    jsonschema.Draft4Validator(schema).validate(patch["status"]["classification"])


# The I/O functions (publish_summary, collect_summaries, write_run_status) run against the local API
# server with real tokens under RBAC: tests/operator/test_identity.py.
