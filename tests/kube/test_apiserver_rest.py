"""Conformance of the local API server's REST semantics against the Kubernetes API conventions."""

from __future__ import annotations

import pytest

from tests.kube.rest import Rest

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def rest(kube_server) -> Rest:
    return Rest.admin(kube_server)


def _cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def test_discovery_documents(rest: Rest) -> None:
    code, api = rest.get("/api")
    assert code == 200 and api["versions"] == ["v1"]
    code, groups = rest.get("/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"batch", "apiextensions.k8s.io"} <= names
    code, core = rest.get("/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["namespaced"] and not by_name["namespaces"]["namespaced"]
    assert "pods/log" in by_name and "pods/status" in by_name
    assert rest.get("/apis/nope.example/v1")[0] == 404


def test_create_get_list_and_errors(rest: Rest) -> None:
    code, created = rest.post(CM, _cm("a", x="1"))
    assert code == 201
    meta = created["metadata"]
    assert (
        meta["uid"]
        and meta["resourceVersion"]
        and meta["creationTimestamp"]
        and meta["namespace"] == "default"
    )
    code, err = rest.post(CM, _cm("a"))
    assert code == 409 and err["reason"] == "AlreadyExists" and err["kind"] == "Status"
    code, err = rest.get(f"{CM}/missing")
    assert (
        code == 404
        and err["reason"] == "NotFound"
        and err["details"] == {"name": "missing", "kind": "configmaps", "group": ""}
    )
    code, lst = rest.get(CM)
    assert (
        code == 200
        and lst["kind"] == "ConfigMapList"
        and [i["metadata"]["name"] for i in lst["items"]] == ["a", "kube-root-ca.crt"]
    )
    assert int(lst["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    code, err = rest.post("/api/v1/namespaces/nowhere/configmaps", _cm("b"))
    assert code == 404 and 'namespaces "nowhere" not found' in err["message"]
    code, err = rest.post(CM, _cm("Bad_Name"))
    assert (
        code == 422 and err["reason"] == "Invalid" and err["details"]["causes"][0]["field"] == "metadata.name"
    )


def test_generate_name(rest: Rest) -> None:
    code, obj = rest.post(CM, {"metadata": {"generateName": "gen-"}, "data": {}})
    assert code == 201 and obj["metadata"]["name"].startswith("gen-") and len(obj["metadata"]["name"]) == 9


def test_optimistic_concurrency_and_noop_update(rest: Rest) -> None:
    _, obj = rest.post(CM, _cm("c", x="1"))
    stale = dict(obj)
    obj["data"] = {"x": "2"}
    code, updated = rest.put(f"{CM}/c", obj)
    assert code == 200 and int(updated["metadata"]["resourceVersion"]) > int(
        stale["metadata"]["resourceVersion"]
    )
    stale["data"] = {"x": "3"}
    code, err = rest.put(f"{CM}/c", stale)
    assert code == 409 and err["reason"] == "Conflict" and "has been modified" in err["message"]
    code, same = rest.put(f"{CM}/c", updated)
    assert code == 200 and same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]


def test_merge_and_json_patch(rest: Rest) -> None:
    rest.post(CM, _cm("p", a="1", b="2"))
    code, obj = rest.patch(f"{CM}/p", {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"k": "v"}}})
    assert code == 200 and obj["data"] == {"b": "2", "c": "3"} and obj["metadata"]["labels"] == {"k": "v"}
    code, obj = rest.patch(
        f"{CM}/p",
        [
            {"op": "test", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/b", "value": "20"},
            {"op": "add", "path": "/metadata/annotations", "value": {"n": "1"}},
        ],
        "json",
    )
    assert code == 200 and obj["data"]["b"] == "20" and obj["metadata"]["annotations"] == {"n": "1"}
    code, _ = rest.patch(f"{CM}/p", [{"op": "test", "path": "/data/b", "value": "nope"}], "json")
    assert code == 422
    # a merge patch carrying a stale resourceVersion is a precondition and conflicts
    code, _err = rest.patch(f"{CM}/p", {"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}})
    assert code == 409


def test_strategic_merge_patch_merges_lists_by_key(rest: Rest) -> None:
    pod = {
        "metadata": {"name": "web"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                {"name": "b", "image": "y"},
            ]
        },
    }
    assert rest.post("/api/v1/namespaces/default/pods", pod)[0] == 201
    patch = {
        "metadata": {"finalizers": ["x/keep"]},
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "env": [{"name": "B", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
            ],
        },
    }
    code, obj = rest.patch("/api/v1/namespaces/default/pods/web", patch, "strategic")
    assert code == 200, obj
    containers = obj["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a"]
    assert containers[0]["image"] == "x" and [e["name"] for e in containers[0]["env"]] == ["A", "B"]
    code, obj = rest.patch(
        "/api/v1/namespaces/default/pods/web",
        {"$deleteFromPrimitiveList/finalizers": ["x/keep"], "metadata": {}},
        "strategic",
    )
    assert code == 200


def test_label_and_field_selectors(rest: Rest) -> None:
    rest.post(CM, _cm("one", {"app": "x", "tier": "a"}))
    rest.post(CM, _cm("two", {"app": "x", "tier": "b"}))
    rest.post(CM, _cm("three", {"app": "y"}))

    def names(query: str) -> list[str]:
        code, lst = rest.get(f"{CM}?{query}")
        assert code == 200, lst
        return sorted(i["metadata"]["name"] for i in lst["items"])

    assert names("labelSelector=app%3Dx") == ["one", "two"]
    assert names("labelSelector=app%3Dx,tier!%3Da") == ["two"]
    assert names("labelSelector=tier+in+(a,b)") == ["one", "two"]
    assert names("labelSelector=!tier") == ["kube-root-ca.crt", "three"]
    assert names("fieldSelector=metadata.name%3Done") == ["one"]
    # every namespace holds the root-CA ConfigMap, as on a real cluster
    assert names("fieldSelector=metadata.name!%3Done") == ["kube-root-ca.crt", "three", "two"]
    assert rest.get(f"{CM}?fieldSelector=data.x%3D1")[0] == 400


def test_list_pagination(rest: Rest) -> None:
    for i in range(5):
        rest.post(CM, _cm(f"page-{i}"))
    _, first = rest.get(f"{CM}?limit=2")
    assert len(first["items"]) == 2 and first["metadata"]["continue"]
    seen = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        _, page = rest.get(f"{CM}?limit=2&continue={token}")
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert sorted(seen) == ["kube-root-ca.crt"] + [f"page-{i}" for i in range(5)]


def test_finalizers_block_deletion(rest: Rest) -> None:
    rest.post(CM, {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    code, obj = rest.delete(f"{CM}/f")
    assert code == 200 and obj["metadata"]["deletionTimestamp"]
    code, obj = rest.get(f"{CM}/f")
    assert code == 200 and obj["metadata"]["deletionTimestamp"]
    code, err = rest.patch(f"{CM}/f", {"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}})
    assert code == 422 and "no new finalizers" in err["message"]
    code, _ = rest.patch(f"{CM}/f", {"metadata": {"finalizers": None}})
    assert code == 200
    assert rest.get(f"{CM}/f")[0] == 404


def test_delete_preconditions(rest: Rest) -> None:
    _, obj = rest.post(CM, _cm("d"))
    code, _err = rest.delete(f"{CM}/d", {"preconditions": {"uid": "not-the-uid"}})
    assert code == 409
    assert rest.delete(f"{CM}/d", {"preconditions": {"uid": obj["metadata"]["uid"]}})[0] == 200
    assert rest.delete(f"{CM}/d")[0] == 404


def test_unsupported_bodies_are_rejected_not_misread(rest: Rest) -> None:
    code, _err = rest.request(
        "POST", CM, {"metadata": {"name": "x"}}, content_type="application/vnd.kubernetes.protobuf"
    )
    assert code == 415
    rest.post(CM, _cm("ssa"))
    code, _ = rest.request("PATCH", f"{CM}/ssa", {"data": {}}, content_type="application/apply-patch+yaml")
    assert code == 415


def test_event_tables_accept_micro_times(rest: Rest) -> None:
    """kopf posts Events with fractional timestamps; kubectl get events must still render them."""
    event = {
        "metadata": {"name": "e1"},
        "type": "Normal",
        "reason": "Seen",
        "message": "hello",
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        "firstTimestamp": "2026-01-01T00:00:00.123456+00:00",
        "lastTimestamp": "2026-01-01T00:00:00.123456+00:00",
    }
    assert rest.post("/api/v1/namespaces/default/events", event)[0] == 201
    code, table = rest.get(
        "/api/v1/namespaces/default/events",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    assert code == 200
    row = table["rows"][0]["cells"]
    assert (
        row[0] == "e1"
        and row[2:5] == ["Normal", "Seen", "configmap/x"]
        and row[1].endswith(("d", "h", "m", "s"))
    )
