"""benchcal.publish: pure ConfigMap/status builders (the API calls are exercised in tests/e2e)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import jsonschema
import pytest

from benchcal import naming
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


class _ApiException(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


class _FakeClient:
    """Just enough of the kubernetes client module for benchcal.publish's I/O functions."""

    def __init__(self):
        self.configmaps: dict[tuple[str, str], dict] = {}
        self.status_patches: list[tuple[str, str, dict]] = []
        self.forbid = False
        client = self

        class exceptions:
            ApiException = _ApiException

        self.exceptions = exceptions

        class CoreV1Api:
            def create_namespaced_config_map(self, namespace, body):
                key = (namespace, body["metadata"]["name"])
                if client.forbid:
                    raise _ApiException(403)
                if key in client.configmaps:
                    raise _ApiException(409)
                client.configmaps[key] = body

            def replace_namespaced_config_map(self, name, namespace, body):
                client.configmaps[(namespace, name)] = body

            def list_namespaced_config_map(self, namespace, label_selector):
                wanted = dict(part.split("=") for part in label_selector.split(","))
                items = [
                    SimpleNamespace(metadata=SimpleNamespace(name=cm["metadata"]["name"]), data=cm["data"])
                    for (ns, _), cm in sorted(client.configmaps.items())
                    if ns == namespace and wanted.items() <= cm["metadata"]["labels"].items()
                ]
                return SimpleNamespace(items=items)

        class CustomObjectsApi:
            def patch_namespaced_custom_object_status(self, group, version, namespace, plural, name, body):
                client.status_patches.append((namespace, name, body))

        self.CoreV1Api = CoreV1Api
        self.CustomObjectsApi = CustomObjectsApi


@pytest.fixture
def fake_client(monkeypatch):
    from benchcal import publish

    fake = _FakeClient()
    monkeypatch.setattr(publish, "_api", lambda: fake)
    monkeypatch.setenv("BENCHCAL_RUN", "tiny")
    monkeypatch.setenv("BENCHCAL_RUN_UID", "u1")
    return fake


def test_publish_then_collect_round_trip(fake_client, monkeypatch):
    from benchcal.publish import collect_summaries, publish_summary, write_run_status

    monkeypatch.setenv("BENCHCAL_CHECKPOINT", "s2")
    publish_summary(summary("s2", 2e15, [result("a", 0, 0.4)]), "ml/tiny-summary-s2")
    publish_summary(
        summary("s2", 2e15, [result("a", 0, 0.6)]), "ml/tiny-summary-s2"
    )  # a retried pod: replaced
    monkeypatch.setenv("BENCHCAL_CHECKPOINT", "s1")
    publish_summary(summary("s1", 1e15, [result("a", 0, 0.3)]), "ml/tiny-summary-s1")
    got = collect_summaries("ml/tiny")
    assert [(s.checkpoint, s.results[0].accuracy) for s in got] == [("s1", 0.3), ("s2", 0.6)]
    with pytest.raises(BadInput, match="no summary ConfigMaps"):
        collect_summaries("ml/other-run")
    classification = StatusClassification.from_verdicts([BenchmarkVerdict("a", "robust")])
    write_run_status("ml/tiny", classification, {"uri": "/r", "size": 3})
    ((ns, name, body),) = fake_client.status_patches
    assert (ns, name) == ("ml", "tiny") and body["status"]["resultsRef"] == {"uri": "/r", "size": 3}
    assert body["status"]["classification"]["benchmarks"] == [{"name": "a", "group": "robust"}]


def test_publish_forbidden_names_the_fix(fake_client):
    from benchcal.publish import publish_summary

    fake_client.forbid = True
    with pytest.raises(BadInput, match=r"forbidden.*ServiceAccount"):
        publish_summary(summary(), "ml/x")


def test_collect_rejects_a_corrupt_configmap(fake_client):
    from benchcal.publish import collect_summaries

    fake_client.configmaps[("ml", "bad")] = {
        "metadata": {"name": "bad", "labels": naming.child_labels("tiny", naming.SUMMARY, "s1")},
        "data": {"summary.json": "{not json"},
    }
    with pytest.raises(BadInput, match="ConfigMap ml/bad: invalid JSON"):
        collect_summaries("ml/tiny")
