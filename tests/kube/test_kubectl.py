"""The real kubectl (v1.32) against the local server: apply, get, explain, delete, wait, logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube.fixtures import Kubectl, LocalCluster, kubectl_available, wait_for

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "calibrationruns.benchcal.dev.yaml"

pytestmark = pytest.mark.skipif(not kubectl_available(), reason="kubectl is not on PATH")

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget is.
            properties:
              size: {type: integer, minimum: 1, description: How big.}
"""


def test_apply_get_explain_delete_custom_resource(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n"
    assert "widget.example.com/w created" in kubectl("apply", "-f", "-", input=widget).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", input=widget).stdout
    assert "configured" in kubectl("apply", "-f", "-", input=widget.replace("3", "5")).stdout
    out = kubectl("get", "wd").stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "AGE"] and out[1].split()[:2] == ["w", "5"]
    assert "How big." in kubectl("explain", "widgets.spec.size").stdout
    bad = kubectl("apply", "-f", "-", input=widget.replace("size: 3", "size: 0"), check=False)
    assert bad.returncode != 0 and "spec.size" in bad.stderr and "greater than or equal to 1" in bad.stderr
    unknown = kubectl(
        "apply", "-f", "-", input=widget.replace("size: 3", "size: 3, colour: red"), check=False
    )
    assert unknown.returncode != 0 and 'unknown field "spec.colour"' in unknown.stderr
    assert kubectl.json("get", "widget", "w")["spec"] == {"size": 5}
    kubectl("delete", "widget", "w")
    assert "NotFound" in kubectl("get", "widget", "w", check=False).stderr


def test_apply_the_project_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(CRD_FILE))
    kubectl("wait", "--for=condition=Established", "crd/calibrationruns.benchcal.dev", "--timeout=10s")
    assert "calrun" in kubectl("api-resources", "--api-group=benchcal.dev").stdout


def test_apply_builtin_uses_strategic_merge(kubectl: Kubectl) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: '1'}}\ndata: {k: v}\n"
    kubectl("apply", "-f", "-", input=cm)
    kubectl("label", "configmap", "c", "added=by-hand")
    kubectl("apply", "-f", "-", input=cm.replace("k: v", "k: w"))
    obj = kubectl.json("get", "configmap", "c")
    # client-side apply keeps fields it did not set (the hand-added label) and updates its own
    assert obj["data"] == {"k": "w"} and obj["metadata"]["labels"] == {"a": "1", "added": "by-hand"}
    kubectl("apply", "-f", "-", input=cm.replace("labels: {a: '1'}", "labels: {}"))
    assert kubectl.json("get", "configmap", "c")["metadata"]["labels"] == {"added": "by-hand"}


def test_job_logs_and_wait_with_runner(tmp_path: Path) -> None:
    with LocalCluster(tmp_path) as cluster:
        k = Kubectl(cluster.kubeconfig)
        job = """
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: main, image: busybox, command: [sh, -c, "echo hello from $(GREETING)"], env: [{name: GREETING, value: job}]}
"""
        k("apply", "-f", "-", input=job)
        k("wait", "--for=condition=complete", "job/hello", "--timeout=30s", timeout=40)
        assert k("logs", "job/hello").stdout.strip() == "hello from job"
        table = k("get", "jobs").stdout.splitlines()
        assert table[0].split()[:3] == ["NAME", "STATUS", "COMPLETIONS"] and table[1].split()[1:3] == [
            "Complete",
            "1/1",
        ]
        k("delete", "job", "hello")  # kubectl asks for Background propagation: pods go too
        wait_for(lambda: not k.json("get", "pods")["items"], 10, what="pods collected")
