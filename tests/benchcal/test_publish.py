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
        self.runs: dict[tuple[str, str], dict] = {}  # (namespace, name) -> the CalibrationRun
        self.conflicts = 0  # status patches to answer 409 before one applies (a concurrent writer)
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
                    SimpleNamespace(
                        metadata=SimpleNamespace(
                            name=cm["metadata"]["name"],
                            owner_references=[
                                SimpleNamespace(uid=r["uid"])
                                for r in cm["metadata"].get("ownerReferences", [])
                            ],
                        ),
                        data=cm["data"],
                    )
                    for (ns, _), cm in sorted(client.configmaps.items())
                    if ns == namespace and wanted.items() <= cm["metadata"]["labels"].items()
                ]
                return SimpleNamespace(items=items)

        class CustomObjectsApi:
            def get_namespaced_custom_object_status(self, group, version, namespace, plural, name):
                if (namespace, name) not in client.runs:
                    raise _ApiException(404)
                return json.loads(json.dumps(client.runs[(namespace, name)]))

            def patch_namespaced_custom_object_status(self, group, version, namespace, plural, name, body):
                client.status_patches.append((namespace, name, body))
                run = client.runs.get((namespace, name))
                if run is None:
                    return
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                if client.conflicts:  # someone else wrote in between: the version moved on
                    client.conflicts -= 1
                    run["metadata"]["resourceVersion"] = str(int(run["metadata"]["resourceVersion"]) + 1)
                if wanted and wanted != run["metadata"]["resourceVersion"]:
                    raise _ApiException(409)
                run.setdefault("status", {}).update(body["status"])
                run["metadata"]["resourceVersion"] = str(int(run["metadata"]["resourceVersion"]) + 1)

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


def test_collect_ignores_summaries_of_a_deleted_namesake(fake_client, monkeypatch):
    """Item 12: a run deleted and re-created under the same name never classifies the old summaries."""
    from benchcal.publish import collect_summaries, publish_summary

    monkeypatch.setenv("BENCHCAL_CHECKPOINT", "s1")
    monkeypatch.setenv("BENCHCAL_RUN_UID", "old-uid")
    publish_summary(summary("s1", 1e15, [result("a", 0, 0.9)]), "ml/tiny-summary-s1")
    monkeypatch.setenv("BENCHCAL_RUN_UID", "u1")
    with pytest.raises(BadInput, match="1 owned by another CalibrationRun"):
        collect_summaries("ml/tiny")
    monkeypatch.setenv("BENCHCAL_CHECKPOINT", "s2")
    publish_summary(summary("s2", 2e15, [result("a", 0, 0.5)]), "ml/tiny-summary-s2")
    assert [s.checkpoint for s in collect_summaries("ml/tiny")] == ["s2"]
    assert [s.checkpoint for s in collect_summaries("ml/tiny", run_uid="old-uid")] == ["s1"]


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
            "labels": naming.child_labels("tiny", naming.SUMMARY, "s1"),
            "ownerReferences": [{"uid": "u1"}],
        },
        "data": {"summary.json": "{not json"},
    }
    with pytest.raises(BadInput, match="ConfigMap ml/bad: invalid JSON"):
        collect_summaries("ml/tiny")


def test_run_status_patch_carries_history_and_last_change_in_the_one_patch():
    from benchcal import history

    first = history.make_entry(
        StatusClassification.from_verdicts([BenchmarkVerdict("piqa", "noise")]),
        generation=1, checkpoints=["a", "b", "c"], pairs=[("piqa", 0)],
    )  # fmt: skip
    second = history.make_entry(
        StatusClassification.from_verdicts([BenchmarkVerdict("piqa", "robust", 0)]),
        generation=2, checkpoints=["a", "b", "c", "d", "e"], pairs=[("piqa", 0)],
    )  # fmt: skip
    h = history.extend((first,), second)
    body = run_status_patch(StatusClassification.from_verdicts([]), None, h, "42")
    assert body["metadata"] == {"resourceVersion": "42"}
    assert [e["generation"] for e in body["status"]["history"]] == [1, 2]
    assert body["status"]["lastChange"] == "piqa: noise (3 ckpts) → robust (5 ckpts)"
    assert "history" not in run_status_patch(StatusClassification.from_verdicts([]), None)["status"]


def _entry(generation, group, n):
    from benchcal import history

    return history.make_entry(
        StatusClassification.from_verdicts([BenchmarkVerdict("piqa", group)]),
        generation=generation, checkpoints=[f"c{i}" for i in range(n)], pairs=[("piqa", 0)],
    )  # fmt: skip


def test_write_run_status_extends_the_runs_history_under_its_resource_version(fake_client):
    from benchcal import history
    from benchcal.publish import read_run_history, write_run_status

    fake_client.runs[("ml", "tiny")] = {"metadata": {"name": "tiny", "resourceVersion": "7"}, "status": {}}
    assert read_run_history("ml/tiny") == ()
    cls = StatusClassification.from_verdicts([BenchmarkVerdict("piqa", "noise")])
    assert write_run_status("ml/tiny", cls, None, _entry(1, "noise", 3)) == (_entry(1, "noise", 3),)
    assert fake_client.status_patches[-1][2]["metadata"] == {"resourceVersion": "7"}
    # the operator wrote in between twice: re-read, re-extended, written on the third try
    fake_client.conflicts = 2
    got = write_run_status("ml/tiny", cls, None, _entry(2, "robust", 5))
    assert [e.generation for e in got] == [1, 2] and len(fake_client.status_patches) == 4
    status = fake_client.runs[("ml", "tiny")]["status"]
    assert history.from_status(status["history"]) == got == read_run_history("ml/tiny")
    assert status["lastChange"] == "piqa: noise (3 ckpts) → robust (5 ckpts)"
    assert status["classification"]["benchmarks"] == [{"name": "piqa", "group": "noise"}]
    # the same reduction again (a retried reducer pod): no second entry
    assert write_run_status("ml/tiny", cls, None, _entry(2, "robust", 5)) == got
    fake_client.conflicts = 99
    with pytest.raises(RuntimeError, match="409 Conflict"):
        write_run_status("ml/tiny", cls, None, _entry(3, "robust", 6))
    with pytest.raises(BadInput, match="not found"):
        read_run_history("ml/absent")


def test_a_damaged_status_history_is_named_not_overwritten(fake_client):
    from benchcal.publish import write_run_status

    fake_client.runs[("ml", "tiny")] = {
        "metadata": {"name": "tiny", "resourceVersion": "1"},
        "status": {"history": [{"generation": "one"}]},
    }
    cls = StatusClassification.from_verdicts([BenchmarkVerdict("piqa", "noise")])
    with pytest.raises(BadInput, match=r"CalibrationRun ml/tiny: status\.history\[0\]\.generation"):
        write_run_status("ml/tiny", cls, None, _entry(1, "noise", 3))
    assert fake_client.status_patches == []
