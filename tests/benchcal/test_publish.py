"""benchcal.publish: pure ConfigMap/status builders (the API calls are exercised in tests/e2e)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from benchcal.errors import BadInput
from benchcal.publish import (
    merge_summaries,
    normalize_classification,
    run_status_patch,
    split_target,
    summary_configmap,
)
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
    assert cm["metadata"]["labels"]["benchcal.dev/run"] == "tiny"
    assert cm["metadata"]["labels"]["benchcal.dev/component"] == "summary"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "u1"
    back = CheckpointSummary.from_dict(json.loads(cm["data"]["summary.json"]))
    assert back.results[0].benchmark == "arc_easy"
    bare = summary_configmap(summary(), "ml", "x", {})
    assert "benchcal.dev/run" not in bare["metadata"]["labels"] and "ownerReferences" not in bare["metadata"]


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


def test_normalize_classification_is_bounded():
    benchmarks = {
        f"b{i:03d}": {
            "group": "robust",
            "recommended_shots": 3,
            "spearman_rho": 0.9,
            "p_value": 0.01,
            "label": "text is dropped",
        }
        for i in range(70)
    }
    out = normalize_classification({"benchmarks": benchmarks})
    assert len(out["benchmarks"]) == 64 and out["truncated"] is True
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
    listed = normalize_classification(
        {
            "benchmarks": [{"name": "x", "group": "noise", "numbers": {"margin": float("nan")}}],
            "counts": {"noise": 1},
        }
    )
    assert listed["benchmarks"] == [{"name": "x", "group": "noise"}] and listed["counts"]["noise"] == 1


def test_confidence_and_flags_are_typed_and_bounded():
    out = normalize_classification(
        {
            "benchmarks": {
                "a": {"group": "robust", "confidence": 0.9666, "borderline": False, "latentTrend": False},
                "b": {"group": "noise", "confidence": 1.7, "borderline": "yes", "latentTrend": True},
                "c": {"group": "inconclusive", "confidence": None, "spearman": 0.5},
            }
        }
    )
    a, b, c = out["benchmarks"]
    assert a == {
        "name": "a",
        "group": "robust",
        "confidence": 0.97,
        "borderline": False,
        "latentTrend": False,
    }
    assert b == {
        "name": "b",
        "group": "noise",
        "confidence": 1.0,
        "latentTrend": True,
    }  # clamped; not a bool: dropped
    assert c == {"name": "c", "group": "inconclusive", "numbers": {"spearman": 0.5}}
    assert out["counts"]["inconclusive"] == 1


def test_run_status_patch_with_results_ref():
    patch = run_status_patch({"benchmarks": []}, {"uri": "/r/report", "sha256": "ab", "size": 12})
    assert patch["status"]["resultsRef"] == {"uri": "/r/report", "sha256": "ab", "size": 12}
    assert "resultsRef" not in run_status_patch({}, None)["status"]


def test_normalize_accepts_the_reducer_status_summary_shape():
    summary = {  # the shape benchcal_reduce.status_summary returns
        "counts": {"robust": 1, "shot_dependent": 0, "poorly_behaved": 0, "noise": 1},
        "benchmarks": {
            "arc_easy": {"group": "robust", "recommendedShots": 3, "spearman": 0.9, "maxAccuracy": 0.61},
            "jeopardy": {"group": "noise", "recommendedShots": None, "spearman": None, "maxAccuracy": 0.01},
        },
        "totalBenchmarks": 2,
        "truncated": False,
        "compositeMonotone": {"before": False, "after": True},
        "checkpoints": 3,
    }
    out = normalize_classification(summary)
    assert out["benchmarks"] == [
        {
            "name": "arc_easy",
            "group": "robust",
            "recommendedShots": 3,
            "numbers": {"spearman": 0.9, "maxAccuracy": 0.61},
        },
        {"name": "jeopardy", "group": "noise", "numbers": {"maxAccuracy": 0.01}},
    ]
    assert out["totalBenchmarks"] == 2 and out["compositeMonotone"] == {"before": False, "after": True}
    import jsonschema

    from benchcal.spec import openapi_schema, to_json_schema

    schema = to_json_schema(openapi_schema()["properties"]["status"]["properties"]["classification"])
    jsonschema.Draft4Validator(schema).validate(out)


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
    write_run_status("ml/tiny", {"benchmarks": {"a": {"group": "robust"}}}, {"uri": "/r", "size": 3})
    ((ns, name, body),) = fake_client.status_patches
    assert (ns, name) == ("ml", "tiny") and body["status"]["resultsRef"] == {"uri": "/r", "size": 3}


def test_publish_forbidden_names_the_fix(fake_client):
    from benchcal.publish import publish_summary

    fake_client.forbid = True
    with pytest.raises(BadInput, match=r"forbidden.*ServiceAccount"):
        publish_summary(summary(), "ml/x")


def test_collect_rejects_a_corrupt_configmap(fake_client):
    from benchcal.publish import collect_summaries

    fake_client.configmaps[("ml", "bad")] = {
        "metadata": {
            "name": "bad",
            "labels": {"benchcal.dev/component": "summary", "benchcal.dev/run": "tiny"},
        },
        "data": {"summary.json": "{not json"},
    }
    with pytest.raises(BadInput, match="ConfigMap ml/bad: invalid JSON"):
        collect_summaries("ml/tiny")
