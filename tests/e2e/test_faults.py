"""Recoverable faults while a run is in flight, and deletion mid-run.

Local only for the injected faults (they need the job runner and the local server's hooks);
against E2E_KUBECONFIG these tests skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchcal import layout
from tests.e2e.harness import E2E, load_manifest, sleep, wait_until

pytestmark = [pytest.mark.e2e]


def _checkpoints(e2e: E2E, run: str) -> Path:
    return layout.checkpoints_dir(e2e.results_dir / run)  # the PVC sub-path of the run is its root


def _results(e2e: E2E, run: str) -> list[Path]:
    # result files are keyed by configuration: <k>shot.<config_key>.json (benchcal.results)
    return sorted(_checkpoints(e2e, run).glob("*/results/*/*shot.*.json"))


def _running_evaluator_pod(e2e: E2E, run: str, checkpoint: str) -> dict | None:
    pods = e2e.kubectl.json(
        "get", "pods", "-l", f"benchcal.dev/run={run},benchcal.dev/checkpoint={checkpoint}"
    )
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    return running[0] if running else None


@pytest.mark.slow
def test_operator_kill_watch_restart_and_pod_disruption(e2e: E2E, tiny_series_built: None) -> None:
    if not e2e.local:
        pytest.skip("injects faults through the local job runner and API server")
    doc = load_manifest("tiny-run.yaml")
    name = doc["metadata"]["name"]
    doc["spec"]["suite"].update(limit=40, shots=[0, 3])  # pairs of a few seconds: time to disrupt one
    e2e.apply(doc)

    # 1) an evaluator pod is disrupted after it finished at least one (benchmark, shots) pair
    first = wait_until(lambda: _results(e2e, name), 600, "a first finished pair")[0]
    checkpoint = first.relative_to(_checkpoints(e2e, name)).parts[0]
    victim = wait_until(lambda: _running_evaluator_pod(e2e, name, checkpoint), 60, "the evaluator pod")
    done_before = {
        p for p in _results(e2e, name) if p.relative_to(_checkpoints(e2e, name)).parts[0] == checkpoint
    }
    e2e.cluster.runner.disrupt_pod(e2e.namespace, victim["metadata"]["name"])

    # 2) the operator dies without cleanup and (3) every watch stream is cut, then it comes back
    e2e.operator.kill()
    e2e.cluster.server.restart_watches()
    sleep(2)
    e2e.operator.start()

    run = e2e.wait_phase(name, timeout=900)
    assert run["status"]["phase"] == "Succeeded", yaml.safe_dump(run["status"])
    assert set(e2e.job_creations().values()) == {1}, e2e.job_creations()

    job = next(
        j for j in e2e.jobs(name) if j["metadata"]["labels"].get("benchcal.dev/checkpoint") == checkpoint
    )
    assert job["status"].get("failed", 0) == 0  # a disruption does not count against backoffLimit
    pods = e2e.kubectl.json(
        "get", "pods", "-l", f"benchcal.dev/run={name},benchcal.dev/checkpoint={checkpoint}"
    )
    assert len(pods["items"]) == 2
    retry = next(p for p in pods["items"] if p["metadata"]["name"] != victim["metadata"]["name"])
    log = e2e.kubectl("logs", retry["metadata"]["name"]).stdout
    assert done_before and log.count("already done") >= len(done_before), log[-3000:]


def test_run_deleted_mid_run_collects_children(e2e: E2E, tiny_series_built: None) -> None:
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = "deleted-mid-run"
    doc["spec"]["results"]["pvc"]["path"] = "deleted-mid-run"
    e2e.apply(doc)
    selector = "benchcal.dev/run=deleted-mid-run"
    # wait until at least one checkpoint published its summary ConfigMap and others still run
    wait_until(
        lambda: e2e.kubectl.json("get", "configmaps", "-l", f"{selector},benchcal.dev/component=summary")[
            "items"
        ],
        600,
        "a published summary",
    )
    assert e2e.jobs("deleted-mid-run")
    e2e.kubectl("delete", "calrun", "deleted-mid-run", "--timeout=60s", timeout=90)
    wait_until(lambda: not e2e.jobs("deleted-mid-run"), 60, "Jobs garbage-collected")
    wait_until(
        lambda: not e2e.kubectl.json("get", "configmaps", "-l", selector)["items"],
        60,
        "ConfigMaps garbage-collected",
    )
    wait_until(
        lambda: not e2e.kubectl.json("get", "pods", "-l", selector)["items"], 60, "pods garbage-collected"
    )
    if e2e.local:
        assert not e2e.cluster.runner.running, "evaluator processes still running after the run was deleted"
