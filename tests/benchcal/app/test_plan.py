"""``benchcal plan``: the objects the operator would create, checked as a real cluster would:
kubernetes-validate (OpenAPI, strict) for 1.29 and 1.32, and the strict local API server in a
namespace enforcing Pod Security ``restricted`` (Job admission plus a pod from each template)."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchcal.app import plan
from benchcal.errors import BadInput

pytest.importorskip("benchcal_operator")
kv = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = ["examples/calibrationrun-minimal.yaml", "examples/gauntlet-v01-pvc.yaml"]


def _plan(tmp_path: Path, path: str, output: str, capsys, namespace: str = "ml") -> str:
    args = argparse.Namespace(run_file=REPO / path, output=output, namespace=namespace)
    assert plan.run(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("example", EXAMPLES)
def test_plan_output_is_valid_for_1_29_and_1_32(tmp_path: Path, capsys, example: str) -> None:
    objects = list(yaml.safe_load_all(_plan(tmp_path, example, "yaml", capsys)))
    run = yaml.safe_load((REPO / example).read_text())
    n = len(run["spec"]["checkpoints"])
    shards = (run["spec"].get("evaluator") or {}).get("shards", 1)
    identity = ["ServiceAccount", "Role", "RoleBinding"] + ["ConfigMap"] * (n * shards)
    assert [o["kind"] for o in objects] == identity + ["Job"] * (n + 1)
    assert objects[-1]["metadata"]["labels"]["benchcal.dev/component"] == "reducer"
    for obj in objects:
        for version in ("1.29.0", "1.32.0"):
            kv.validate(obj, version, strict=True)
        if obj["kind"] != "Job":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["fsGroup"] == 65532 and pod["securityContext"]["runAsNonRoot"]


def test_plan_output_passes_restricted_pod_security(tmp_path: Path, capsys) -> None:
    from tests.kube.apiserver.api import Api

    api = Api()
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    api.create(api.type("", "v1", "namespaces"), None, {"metadata": {"name": "ml", "labels": labels}})
    doc = json.loads(_plan(tmp_path, EXAMPLES[1], "json", capsys))
    assert doc["kind"] == "List"
    plurals = {"ServiceAccount": ("", "serviceaccounts"), "ConfigMap": ("", "configmaps")}
    plurals |= {k: ("rbac.authorization.k8s.io", k.lower() + "s") for k in ("Role", "RoleBinding")}
    for obj in doc["items"]:
        if obj["kind"] in plurals:  # the run's own identity first: its pods' ServiceAccount
            group, plural = plurals[obj["kind"]]
            api.create(api.type(group, "v1", plural), "ml", copy.deepcopy(obj))
    for job in (o for o in doc["items"] if o["kind"] == "Job"):
        _, warnings = api.create(api.type("batch", "v1", "jobs"), "ml", copy.deepcopy(job))
        assert warnings == []
        template = job["spec"]["template"]
        pod: dict[str, Any] = {
            "metadata": {
                "generateName": f"{job['metadata']['name']}-",
                "labels": template["metadata"]["labels"],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        api.create(api.type("", "v1", "pods"), "ml", pod)


def test_plan_refuses_what_the_operator_would_refuse(tmp_path: Path) -> None:
    run = yaml.safe_load((REPO / EXAMPLES[0]).read_text())
    run["spec"].setdefault("evaluator", {}).update(
        volumes=[{"name": "scratch", "emptyDir": {}}], volumeMounts=[{"name": "scratch", "mountPath": "/tmp"}]
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    args = argparse.Namespace(run_file=path, output="yaml", namespace=None)
    with pytest.raises(BadInput, match=r"run.yaml: spec.evaluator.volumeMounts\[0\].mountPath"):
        plan.run(args)
    path.write_text("spec: [unclosed\n")
    with pytest.raises(BadInput, match=r"run.yaml:\d+: invalid YAML"):
        plan.run(args)
