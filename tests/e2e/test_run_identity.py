"""Items 7(a) and 8: a run in any watched namespace works with no manual step, its pods as the
run's own ServiceAccount (created by the operator under the chart's RBAC, escalation-checked),
and that identity goes with the run.

Before per-run identities, a run in a namespace outside the release namespace and
``jobServiceAccount.extraNamespaces`` stalled: ``Stalled=True``, reason ``FailedCreate``,
``serviceaccount "benchcal-job" not found``.
"""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.chart import RELEASE_NAMESPACE
from tests.e2e.harness import E2E, RESTRICTED, load_manifest, wait_until
from tests.kube.fixtures import Kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ELSEWHERE = "team-elsewhere"  # neither the release namespace nor the harness' test namespace


def test_a_run_in_an_unprepared_namespace_succeeds_as_its_own_service_account(
    e2e: E2E, tiny_series_built: None
) -> None:
    if not e2e.local:
        pytest.skip("uses the local server's record of refused requests")
    assert ELSEWHERE not in (RELEASE_NAMESPACE, e2e.namespace)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ELSEWHERE, "labels": RESTRICTED}}
    e2e.apply(ns)
    kubectl = Kubectl(e2e.kubectl.kubeconfig, ELSEWHERE)
    doc = load_manifest("tiny-run.yaml")
    name = doc["metadata"]["name"] = "elsewhere"
    doc["spec"].pop("results")  # no claim in this namespace: an emptyDir per pod
    kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))

    def finished() -> dict | None:
        run = kubectl.json("get", "calibrationrun", name)
        return run if (run.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Invalid") else None

    try:
        run = wait_until(finished, 600, f"CalibrationRun {ELSEWHERE}/{name} finished")
    except AssertionError as exc:
        status = kubectl.json("get", "calibrationrun", name).get("status")
        raise AssertionError(f"{exc}\n{yaml.safe_dump(status)}\n{e2e.operator.log()[-3000:]}") from None
    assert run["status"]["phase"] == "Succeeded", yaml.safe_dump(run["status"])
    assert run["status"]["classification"]["benchmarks"]

    identity = f"{name}-benchcal"
    pods = kubectl.json("get", "pods", "-l", f"benchcal.dev/run={name}")["items"]
    assert len(pods) == 4 and {p["spec"]["serviceAccountName"] for p in pods} == {identity}
    for kind in ("serviceaccount", "role", "rolebinding"):
        obj = kubectl.json("get", kind, identity)
        assert obj["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"], obj
    cms = kubectl.json("get", "configmaps", "-l", f"benchcal.dev/run={name},benchcal.dev/component=summary")
    assert sorted(c["metadata"]["name"] for c in cms["items"]) == [
        f"{name}-summary-{c}" for c in ("s1", "s3", "s5")
    ]
    # neither the operator (creating the identity: RBAC escalation checked) nor a pod was refused
    assert e2e.forbidden() == [], e2e.forbidden()

    kubectl("delete", "calibrationrun", name)
    wait_until(
        lambda: kubectl("get", "serviceaccount", identity, check=False).returncode != 0,
        60,
        f"ServiceAccount {identity} garbage-collected with its run",
    )
