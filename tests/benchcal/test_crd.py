"""The CalibrationRun CRD: one source, a valid apiextensions/v1 object, a structural schema."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchcal import api

SOURCE = Path(__file__).resolve().parents[2] / "crds" / "calibrationruns.benchcal.dev.yaml"
# the only subtrees allowed to keep unknown fields: core/v1 types passed through unchanged
PRESERVE_ALLOWED = {
    "spec.evaluator.affinity",
    "spec.evaluator.env[].valueFrom",
    "spec.evaluator.volumes[]",
}


def _crd() -> dict:
    return yaml.safe_load(SOURCE.read_text())


def _walk(node: dict, path: str = ""):
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_package_copy_is_byte_identical_to_the_source():
    assert api.crd_text() == SOURCE.read_text(), "benchcal/crd/ is a generated copy of crds/: run make crds"


def test_is_a_valid_apiextensions_v1_crd():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    assert kubernetes_validate.validate(_crd(), "1.32", strict=True) == "1.32"


def test_names_scope_subresources_and_printer_columns():
    crd = _crd()
    assert crd["metadata"]["name"] == "calibrationruns.benchcal.dev"
    assert crd["spec"]["names"]["shortNames"] == ["calrun"]
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["storage"] and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:6] == ["Phase", "Done", "Robust", "Noise", "Ready", "Age"]  # Ready: kstatus
    schema = version["schema"]["openAPIV3Schema"]
    for col in version["additionalPrinterColumns"]:
        parts = col["jsonPath"].lstrip(".").split("[")[0].split(".")
        if parts[0] == "metadata":
            continue
        node = schema
        for part in parts:
            assert part in node.get("properties", {}), (
                f"printer column {col['name']} points at a missing field"
            )
            node = node["properties"][part]


def test_schema_is_structural_and_documented():
    schema = api.openapi_schema()
    for path, node in _walk(schema):
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node
        else:
            assert "type" in node, f"{path or '(root)'}: every node needs a type"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in PRESERVE_ALLOWED, f"{path}: preserve-unknown-fields only where needed"
        if path.startswith(("spec", "status")) and path not in ("spec", "status"):
            is_item_of_documented_list = path.endswith("[]") or path.endswith("{}")
            assert "description" in node or is_item_of_documented_list, f"{path}: add a description"
    for path, node in _walk(schema):
        if node.get("type") == "array" and path.startswith("status"):
            assert "maxItems" in node, f"{path}: status lists must be bounded"


def test_checkpoints_min_items_is_the_reducers_minimum():
    """One number: the reducer's MIN_CHECKPOINTS is what the CRD admits (and its words say)."""
    from benchcal.classification import MIN_CHECKPOINTS
    from benchcal_reduce import table

    node = api.openapi_schema()["properties"]["spec"]["properties"]["checkpoints"]
    assert node["minItems"] == MIN_CHECKPOINTS == table.MIN_CHECKPOINTS
    words = {3: "three"}[MIN_CHECKPOINTS]  # a new minimum must update the description and message
    assert f"At least {words}, with at least {words} distinct flops" in node["description"]
    (rule,) = node["x-kubernetes-validations"]
    assert rule["message"].startswith(f"spec.checkpoints needs at least {words} distinct")


def test_every_cel_rule_has_a_message():
    rules = [
        (path, r)
        for path, node in _walk(api.openapi_schema())
        for r in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= 8
    for path, rule in rules:
        assert rule.get("message"), f"{path}: CEL rule without message: {rule['rule']}"


def test_kubectl_client_side_dry_run_accepts_it():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    proc = subprocess.run(
        ["kubectl", "create", "--dry-run=client", "--validate=false", "-o", "yaml", "-f", str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "connection refused" in proc.stderr or "unable to recognize" in proc.stderr:
        pytest.skip("kubectl needs an API server for discovery even with --dry-run=client")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["metadata"]["name"] == "calibrationruns.benchcal.dev"
