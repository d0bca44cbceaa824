"""Bad input at each layer: the CRD schema (kubectl error), semantic checks (Accepted=False, no
Job), and a checkpoint whose model path is missing (its Job fails at once, the run names it)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from benchcal import layout
from tests.e2e.harness import E2E, load_manifest, wait_until
from tests.kube.fixtures import external_kubeconfig, kubectl_available

pytestmark = [pytest.mark.e2e]


def test_schema_rejected_spec_is_a_kubectl_error(e2e: E2E) -> None:
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = "two-checkpoints"
    doc["spec"]["checkpoints"] = doc["spec"]["checkpoints"][:2]  # the CRD requires at least three
    proc = e2e.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert proc.returncode != 0
    assert "spec.checkpoints" in proc.stderr and "is invalid" in proc.stderr
    assert "should have at least 3 items" in proc.stderr, proc.stderr
    assert "NotFound" in e2e.kubectl("get", "calrun", "two-checkpoints", check=False).stderr
    # three checkpoints but two distinct FLOPs: the reducer would pool two of them, so it is refused too
    doc["metadata"]["name"] = "equal-flops"
    doc["spec"]["checkpoints"] = load_manifest("tiny-run.yaml")["spec"]["checkpoints"]
    doc["spec"]["checkpoints"][2]["flops"] = doc["spec"]["checkpoints"][1]["flops"]
    proc = e2e.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert proc.returncode != 0
    assert "spec.checkpoints needs at least three distinct training FLOPs" in " ".join(proc.stderr.split())
    assert "NotFound" in e2e.kubectl("get", "calrun", "equal-flops", check=False).stderr


def test_semantically_invalid_run_is_not_accepted_and_starts_nothing(e2e: E2E) -> None:
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = "unknown-benchmark"
    doc["spec"]["suite"]["benchmarks"] = [{"name": "no_such_benchmark"}]
    e2e.apply(doc)
    run = e2e.wait_phase("unknown-benchmark", ("Invalid", "Failed"), timeout=60)
    accepted = next(c for c in run["status"]["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and "no_such_benchmark" in accepted["message"]
    time.sleep(2)  # give a wrong operator the chance to create Jobs anyway
    assert e2e.jobs("unknown-benchmark") == []
    if e2e.local:  # the chart's RBAC covers every call the operator made
        assert e2e.forbidden() == [], e2e.forbidden()


def test_missing_model_path_fails_that_checkpoint_without_retries(e2e: E2E, tiny_series_built: None) -> None:
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = "missing-model"
    good = copy.deepcopy(doc["spec"]["checkpoints"][0])
    missing = {"name": "gone", "model": {"path": str(e2e.work_dir / "no-such-checkpoint")}, "flops": 9.9e12}
    # a third checkpoint (the CRD's minimum), also missing: it fails at once too, so no evaluation is added
    absent = {"name": "absent", "model": {"path": str(e2e.work_dir / "no-such-checkpoint-2")}, "flops": 2e13}
    doc["spec"]["checkpoints"] = [good, missing, absent]
    doc["spec"]["suite"]["benchmarks"] = [{"name": "copa"}]
    doc["spec"]["suite"]["shots"] = [0]
    doc["spec"]["suite"]["limit"] = 4
    doc["spec"]["results"] = {"pvc": {"claimName": "benchcal-results", "path": "missing-model"}}
    e2e.apply(doc)
    run = e2e.wait_phase("missing-model", ("Failed", "Succeeded"), timeout=600)
    status = run["status"]
    assert status["phase"] == "Failed", yaml.safe_dump(status)
    assert "gone" in next(c for c in status["conditions"] if c["type"] == "Failed")["message"]
    by_name = {c["name"]: c for c in status["checkpoints"]}
    assert by_name["gone"]["phase"] == "Failed"
    jobs = {j["metadata"]["labels"]["benchcal.dev/checkpoint"]: j for j in e2e.jobs("missing-model")}
    failed = jobs["gone"]
    reason = next(c for c in failed["status"]["conditions"] if c["type"] == "Failed")["reason"]
    assert reason == "PodFailurePolicy"  # exit code 2 = bad input: fail now, do not retry
    assert failed["status"].get("failed") == 1
    pods = e2e.kubectl.json("get", "pods", "-l", "benchcal.dev/checkpoint=gone")["items"]
    assert len(pods) == 1
    # the other checkpoint finished (the operator lets running work finish) and its results stay
    assert by_name[good["name"]]["phase"] == "Succeeded"
    if e2e.local:
        kept = list(layout.checkpoint_dir(e2e.results_dir / "missing-model", good["name"]).rglob("*.json"))
        assert kept, "the good checkpoint's results were removed"


def test_namespace_mode_install_works_without_cluster_wide_rights(tmp_path: Path) -> None:
    """The chart's namespace mode (rbac.clusterScoped=false): Roles in the watched namespace only,
    kopf watching that namespace; the operator must get every verb it uses."""
    if not kubectl_available() or external_kubeconfig() is not None:
        pytest.skip("needs kubectl and the local cluster")
    world = E2E(tmp_path, chart_mode="namespaced")
    try:
        doc = load_manifest("tiny-run.yaml")
        doc["metadata"]["name"] = "ns-mode"
        doc["spec"]["suite"]["benchmarks"] = [{"name": "no_such_benchmark"}]
        world.apply(doc)
        run = world.wait_phase("ns-mode", ("Invalid", "Failed"), timeout=60)
        assert run["status"]["phase"] == "Invalid"
        time.sleep(3)  # kopf's namespace scan runs at start-up
        assert world.forbidden() == [], world.forbidden()
    finally:
        world.close()


@pytest.mark.slow  # waits out the minute a stalled run has to be reported in
def test_pods_refused_at_admission_are_reported_not_running_forever(e2e: E2E) -> None:
    if not e2e.local:
        pytest.skip("uses the local job runner's FailedCreate")
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = "no-service-account"
    doc["spec"]["evaluator"] = {"serviceAccountName": "does-not-exist"}
    e2e.apply(doc)
    events = wait_until(
        lambda: [
            e
            for e in e2e.kubectl.json("get", "events")["items"]
            if e["reason"] == "FailedCreate" and 'serviceaccount "does-not-exist" not found' in e["message"]
        ],
        60,
        "FailedCreate events on the evaluator Jobs",
    )
    assert (
        events and not e2e.kubectl.json("get", "pods", "-l", "benchcal.dev/run=no-service-account")["items"]
    )

    def reported() -> bool:
        status = e2e.run("no-service-account").get("status") or {}
        stalled = [
            c for c in status.get("conditions") or [] if c["type"] == "Stalled" and c["status"] == "True"
        ]
        return bool(stalled) and "does-not-exist" in stalled[0].get("message", "")

    wait_until(reported, 60, "a Stalled condition naming the missing ServiceAccount")
