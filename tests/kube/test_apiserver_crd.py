"""CustomResourceDefinitions: serving, schema validation/pruning/defaults, status subresource, tables."""

from __future__ import annotations

import copy

import pytest

from tests.kube.rest import Rest

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                                    "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "conditions": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "type": {"type": "string"},
                                                "status": {"type": "string"},
                                            },
                                        },
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}
BASE = "/apis/example.com/v1/namespaces/default/widgets"


@pytest.fixture
def rest(kube_server) -> Rest:
    r = Rest.admin(kube_server)
    code, crd = r.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert code == 201, crd
    return r


def _widget(name: str, **spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_is_established_and_discoverable(rest: Rest) -> None:
    _, crd = rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    _, res = rest.get("/apis/example.com/v1")
    assert {r["name"] for r in res["resources"]} == {"widgets", "widgets/status"}
    assert rest.get(BASE)[0] == 200


def test_schema_validation_errors_name_the_field(rest: Rest) -> None:
    code, err = rest.post(BASE, _widget("w", size=0, color="green"))
    assert code == 422 and err["reason"] == "Invalid"
    fields = {c["field"] for c in err["details"]["causes"]}
    assert fields == {"spec.size", "spec.color"}
    assert "should be greater than or equal to 1" in err["message"]
    code, err = rest.post(BASE, _widget("w2"))
    assert code == 422 and err["details"]["causes"][0] == {
        "reason": "FieldValueRequired",  # the cause type is the field error's type, as upstream
        "message": "Required value",
        "field": "spec.size",
    }
    code, err = rest.post(BASE, _widget("w3", size="big"))
    assert code == 422 and "must be of type integer" in err["message"]


def test_pruning_and_defaults(rest: Rest) -> None:
    code, obj = rest.post(BASE, _widget("w", size=2, unknown=1, free={"any": {"thing": 1}}))
    assert code == 201
    assert obj["spec"] == {"size": 2, "color": "red", "free": {"any": {"thing": 1}}}
    code, err = rest.request("POST", f"{BASE}?fieldValidation=Strict", _widget("w4", size=2, bogus=1))
    assert code == 400 and 'unknown field "spec.bogus"' in err["message"]


def test_status_subresource_and_generation(rest: Rest) -> None:
    body = _widget("w", size=2)
    body["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    _, obj = rest.post(BASE, body)
    assert "status" not in obj and obj["metadata"]["generation"] == 1
    # status writes through /status do not touch spec and keep the generation
    new = copy.deepcopy(obj)
    new["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    new["spec"]["size"] = 9
    code, obj = rest.put(f"{BASE}/w/status", new)
    assert code == 200 and obj["spec"]["size"] == 2 and obj["status"]["conditions"][0]["status"] == "True"
    assert obj["metadata"]["generation"] == 1
    # spec writes ignore status and bump the generation
    code, obj = rest.patch(f"{BASE}/w", {"spec": {"size": 3}, "status": {"conditions": []}})
    assert code == 200 and obj["metadata"]["generation"] == 2 and obj["status"]["conditions"]
    # metadata-only changes do not bump it
    code, obj = rest.patch(f"{BASE}/w", {"metadata": {"labels": {"a": "b"}}})
    assert obj["metadata"]["generation"] == 2
    code, _err = rest.patch(f"{BASE}/w", {"spec": {"size": 3}}, "strategic")
    assert code == 415


def test_custom_resource_update_requires_resource_version(rest: Rest) -> None:
    _, obj = rest.post(BASE, _widget("w", size=2))
    del obj["metadata"]["resourceVersion"]
    code, err = rest.put(f"{BASE}/w", obj)
    assert code == 422 and "must be specified for an update" in err["message"]


def test_table_uses_printer_columns(rest: Rest) -> None:
    _, obj = rest.post(BASE, _widget("w", size=4))
    obj["status"] = {
        "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]
    }
    rest.put(f"{BASE}/w/status", obj)
    code, table = rest.get(BASE, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["w", 4, "True"] and cells[3].endswith("s")
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_deleting_the_crd_removes_its_objects_and_endpoint(rest: Rest) -> None:
    rest.post(BASE, _widget("w", size=1))
    assert (
        rest.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0] == 200
    )
    assert rest.get(BASE)[0] == 404
    assert rest.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)[0] == 201
    _, lst = rest.get(BASE)
    assert lst["items"] == []


def test_invalid_crd_is_rejected(rest: Rest) -> None:
    bad = copy.deepcopy(CRD)
    bad["metadata"]["name"] = "gadgets.example.com"
    code, err = rest.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert code == 422 and "spec.names.plural" in err["message"]
