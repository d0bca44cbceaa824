"""The shipped examples: every CalibrationRun parses with the CRD (no field the API server would
silently prune), the Kueue/Argo CD variant is wired consistently, and the Argo CD health Lua
behaves as documented (run in Lua 5.1, the dialect of Argo CD's gopher-lua)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
KUEUE_ARGO = EXAMPLES / "kueue-argocd"
HEALTH_KEY = "resource.customizations.health.benchcal.dev_CalibrationRun"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def calibration_runs() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") == "CalibrationRun":
                found.append((str(path.relative_to(REPO_ROOT)), doc))
    return found


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune: not declared by the structural schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        out = []
        for key, child in value.items():
            if key in schema["properties"]:
                out += unknown_fields(child, schema["properties"][key], f"{path}.{key}")
            elif path != "" or key not in ("apiVersion", "kind", "metadata"):
                out.append(f"{path}.{key}")
        return out
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return [
            p
            for k, v in value.items()
            for p in unknown_fields(v, schema["additionalProperties"], f"{path}.{k}")
        ]
    if isinstance(value, list) and "items" in schema:
        return [p for i, v in enumerate(value) for p in unknown_fields(v, schema["items"], f"{path}[{i}]")]
    return []


def test_examples_exist() -> None:
    names = {p for p, _ in calibration_runs()}
    assert {"examples/gauntlet-v01-pvc.yaml", "examples/kueue-argocd/manifests/calibrationrun.yaml"} <= names


@pytest.mark.parametrize("where, doc", calibration_runs(), ids=lambda x: x if isinstance(x, str) else "")
def test_example_calibrationruns_parse_and_declare_only_known_fields(where: str, doc: dict[str, Any]) -> None:
    crd = yaml.safe_load((REPO_ROOT / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    assert doc["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert unknown_fields(doc, version["schema"]["openAPIV3Schema"]) == [], where
    spec = pytest.importorskip("benchcal.spec")
    run = spec.parse_run(doc)
    flops = [c.flops for c in run.checkpoints]
    assert flops == sorted(flops), f"{where}: list checkpoints in training order"


def test_gauntlet_pvc_example_is_five_pvc_checkpoints_on_the_v01_preset() -> None:
    (doc,) = documents(EXAMPLES / "gauntlet-v01-pvc.yaml")
    checkpoints = doc["spec"]["checkpoints"]
    assert len(checkpoints) == 5
    assert {c["model"]["pvc"]["claimName"] for c in checkpoints} == {"llm-checkpoints"}
    assert doc["spec"]["suite"]["preset"] == "gauntlet-v0.1"
    assert doc["spec"]["suite"]["shots"] == [0, 1, 3, 5, 10]
    assert "pvc" in doc["spec"]["results"]


def test_kueue_argocd_example_is_wired_consistently() -> None:
    (queue,) = documents(KUEUE_ARGO / "manifests" / "localqueue.yaml")
    (run,) = documents(KUEUE_ARGO / "manifests" / "calibrationrun.yaml")
    assert queue["kind"] == "LocalQueue" and queue["apiVersion"].startswith("kueue.x-k8s.io/")
    assert run["spec"]["queueName"] == queue["metadata"]["name"]
    assert run["metadata"]["namespace"] == queue["metadata"]["namespace"]
    apps = {a["metadata"]["name"]: a for a in documents(KUEUE_ARGO / "application.yaml")}
    for app in apps.values():
        assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1"
        assert (REPO_ROOT / app["spec"]["source"]["path"]).is_dir()
    runs_app = apps["ml-evals-calibrations"]
    assert runs_app["spec"]["destination"]["namespace"] == queue["metadata"]["namespace"]
    assert runs_app["spec"]["syncPolicy"]["automated"]["prune"] is False
    operator_app = apps["benchcal-operator"]
    assert (
        queue["metadata"]["namespace"]
        in operator_app["spec"]["source"]["helm"]["valuesObject"]["watchNamespaces"]
    )


def test_argocd_operator_values_are_accepted_by_the_chart() -> None:
    helm = pytest.importorskip("helm_python")
    apps = {a["metadata"]["name"]: a for a in documents(KUEUE_ARGO / "application.yaml")}
    app = apps["benchcal-operator"]
    chart = helm.Chart.load(str(REPO_ROOT / app["spec"]["source"]["path"]))
    rendered = chart.render(
        app["spec"]["source"]["helm"]["valuesObject"], name="benchcal", namespace="benchcal-system"
    )
    assert any("kind: Role\n" in text for text in rendered.values())


# ---- the Argo CD health check, executed ---------------------------------------------------


def health_script() -> str:
    (patch,) = documents(KUEUE_ARGO / "argocd-cm-health.yaml")
    return patch["data"][HEALTH_KEY]


def run_health(obj: dict[str, Any]) -> tuple[str, str]:
    lua51 = pytest.importorskip("lupa.lua51")
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(health_script())
    return hs["status"], hs["message"]


def cr(generation: int = 2, observed: int | None = 2, conditions=(), **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "r", "generation": generation}, "spec": dict(spec)}
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "phase": "Running", "conditions": list(conditions)}
    return obj


def cond(type_: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": "R", "message": message}


@pytest.mark.parametrize(
    "obj, expected_status, message_part",
    [
        (cr(observed=None), "Progressing", "Waiting"),
        (cr(suspend=True), "Suspended", "suspend"),
        (cr(observed=1, conditions=[cond("Ready", "True")]), "Progressing", "generation 2"),
        (cr(conditions=[cond("Ready", "False", "3/5 checkpoints evaluated")]), "Progressing", "3/5"),
        (cr(conditions=[]), "Progressing", "Running"),
        (
            cr(conditions=[cond("Ready", "True", "12 robust"), cond("Succeeded", "True")]),
            "Healthy",
            "12 robust",
        ),
        (
            cr(conditions=[cond("Ready", "False"), cond("Stalled", "True", "spec invalid")]),
            "Degraded",
            "spec invalid",
        ),
        (cr(conditions=[cond("Ready", "False"), cond("Failed", "True", "ckpt s3 failed")]), "Degraded", "s3"),
    ],
)
def test_argocd_health_follows_the_conditions(obj, expected_status: str, message_part: str) -> None:
    status, message = run_health(obj)
    assert status == expected_status
    assert message_part in message


def test_operations_doc_shows_the_tested_health_script() -> None:
    doc = REPO_ROOT / "docs" / "operations.md"
    if not doc.exists():
        pytest.skip("docs/operations.md not written yet")
    text = doc.read_text()
    indented = "\n".join("    " + line if line else "" for line in health_script().splitlines())
    assert health_script() in text or indented in text, (
        "docs/operations.md: copy the Lua from argocd-cm-health.yaml"
    )


def test_growing_run_example_is_an_update_the_api_server_accepts() -> None:
    """Commit 2 appends two checkpoints to commit 1 and changes nothing else; the CRD's transition
    rules (evaluated as the local API server does) accept it, and refuse a changed model."""
    pytest.importorskip("celpy")
    from tests.kube.apiserver import cel

    (first,) = documents(EXAMPLES / "growing-run" / "calibrationrun.yaml")
    (grown,) = documents(EXAMPLES / "growing-run" / "calibrationrun-grown.yaml")
    assert grown["spec"]["checkpoints"][:3] == first["spec"]["checkpoints"]
    assert len(grown["spec"]["checkpoints"]) == 5
    assert {k: v for k, v in grown["spec"].items() if k != "checkpoints"} == {
        k: v for k, v in first["spec"].items() if k != "checkpoints"
    }
    crd = yaml.safe_load((REPO_ROOT / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert cel.validate(schema, grown, first) == []
    changed = yaml.safe_load(yaml.safe_dump(grown))
    changed["spec"]["checkpoints"][0]["model"]["pvc"]["path"] = "pretrain-7b/other"
    errors = cel.validate(schema, changed, grown)
    assert errors and "create a new CalibrationRun" in str(errors), errors
