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
# The history path of write_run_status (read, extend, conditional patch) also with a fake client below.


class _ApiException(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


class _FakeClient:
    """Just enough of the kubernetes client for write_run_status's history path, with a concurrent
    writer simulated (a 409 on a stale resourceVersion)."""

    def __init__(self):
        self.status_patches: list[tuple[str, str, dict]] = []
        self.runs: dict[tuple[str, str], dict] = {}  # (namespace, name) -> the CalibrationRun
        self.conflicts = 0  # status patches to answer 409 before one applies (a concurrent writer)
        client = self

        class exceptions:
            ApiException = _ApiException

        self.exceptions = exceptions

        class CustomObjectsApi:
            def get_namespaced_custom_object(self, group, version, namespace, plural, name):
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

        self.CustomObjectsApi = CustomObjectsApi


@pytest.fixture
def fake_client(monkeypatch):
    from benchcal import publish

    fake = _FakeClient()
    monkeypatch.setattr(publish, "_api", lambda: fake)
    monkeypatch.setenv("BENCHCAL_RUN", "tiny")
    monkeypatch.setenv("BENCHCAL_RUN_UID", "u1")
    return fake


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
