"""A CalibrationRun from kubectl apply to Succeeded: real operator process, the real evaluator and
reducer images in the Jobs (podman containers as uid 65532 on a read-only root; their baked tiny
series, no host cache)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from benchcal import history
from benchcal.classification import (
    INCONCLUSIVE,
    NOISE,
    POORLY_BEHAVED,
    ROBUST,
    SHOT_DEPENDENT,
    StatusClassification,
)
from tests.e2e.harness import E2E, EXAMPLE, IMAGES, MANIFESTS
from tests.images import build
from tests.kube.fixtures import kubectl_available

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.podman]


@pytest.fixture
def e2e(tmp_path: Path, request: pytest.FixtureRequest):
    if not kubectl_available():
        # the README's test command on CI runs this in containers: a missing tool is a failure there
        (pytest.fail if os.environ.get("CI") else pytest.skip)("kubectl is not on PATH")
    world = E2E(tmp_path, runtime="podman")
    if world.runtime == "process":
        request.getfixturevalue("tiny_series_built")  # process pods share the host's cache
    try:
        yield world
    finally:
        world.close()


def test_minimal_run_succeeds(e2e: E2E) -> None:
    manifest = EXAMPLE if EXAMPLE.exists() else MANIFESTS / "tiny-run.yaml"
    doc = yaml.safe_load(manifest.read_text())
    name = doc["metadata"]["name"]
    if e2e.local and "results" not in doc["spec"]:
        # keep the report after the pods exit: a claim the job runner maps to a temp directory
        doc["spec"]["results"] = {"pvc": {"claimName": "benchcal-results", "path": name}}
    e2e.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))

    run = e2e.wait_phase(name, timeout=900)
    status = run["status"]
    assert status["phase"] == "Succeeded", yaml.safe_dump(status)
    n = len(doc["spec"]["checkpoints"])
    assert status["checkpointsSucceeded"] == n and status["progress"] == f"{n}/{n}"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert status["observedGeneration"] == run["metadata"]["generation"]

    # the classification the reducer wrote: every benchmark in one of the groups, with a confidence
    # (read back through its one typed definition: any other shape fails here)
    classification = StatusClassification.from_status(status["classification"])
    groups = {ROBUST, SHOT_DEPENDENT, POORLY_BEHAVED, NOISE, INCONCLUSIVE}
    benchmarks = {b["name"] if isinstance(b, dict) else b for b in doc["spec"]["suite"].get("benchmarks", [])}
    names = {b.name for b in classification.benchmarks}
    assert benchmarks <= names or not benchmarks
    assert classification.total_benchmarks == len(names) and not classification.truncated
    assert sum(classification.counts[g] for g in groups) == len(names)
    assert all(b.confidence is not None and 0 <= b.confidence <= 1 for b in classification.benchmarks)
    # ... and, in the same patch, the first entry of the verdict history, for this generation
    (entry,) = history.from_status(status["history"])
    assert entry.generation == run["metadata"]["generation"] and entry.count == n
    assert {(v.name, v.group) for v in entry.verdicts} == {
        (b.name, b.group) for b in classification.benchmarks
    }
    assert status["lastChange"] == ""  # nothing to compare with yet

    # kubectl get shows the printer columns, filled in
    table = e2e.kubectl("get", "calrun", name).stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "PHASE", "DONE", "ROBUST"]
    row = table[1].split()
    assert row[0] == name and row[1] == "Succeeded" and row[2] == f"{n}/{n}"
    assert "MESSAGE" in e2e.kubectl("get", "calrun", name, "-o", "wide").stdout

    # one Job per checkpoint plus the reducer, each created exactly once
    jobs = e2e.jobs(name)
    assert len(jobs) == n + 1
    if e2e.local:
        assert set(e2e.job_creations().values()) == {1}
        # the report exists where resultsRef points: locally the reducer saw rewritten (host) paths;
        # a container path is mapped through the reducer pod's mounts
        uri = status["resultsRef"]["uri"]
        report: Path | None = Path(uri.removeprefix("file://"))
        if not report.exists():
            reducer = e2e.kubectl.json(
                "get", "pods", "-l", f"benchcal.dev/run={name},benchcal.dev/component=reducer"
            )
            report = e2e.host_path(reducer["items"][0]["metadata"]["uid"], str(report))
        assert report is not None and report.exists() and report.stat().st_size > 0, uri
        assert hashlib.sha256(report.read_bytes()).hexdigest() == status["resultsRef"]["sha256"]

        # under the chart's RBAC, in a restricted namespace: the operator and every pod were
        # authenticated as their ServiceAccounts, and none of their requests was refused
        labels = e2e.kubectl.json("get", "namespace", e2e.namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        pods = e2e.kubectl.json("get", "pods", "-l", f"benchcal.dev/run={name}")["items"]
        assert pods and {p["spec"]["serviceAccountName"] for p in pods} == {f"{name}-benchcal"}  # its own
        assert e2e.forbidden() == [], e2e.forbidden()
        if e2e.runtime == "podman":
            _ran_in_the_images_as_65532_on_a_read_only_root(pods, report)


def _ran_in_the_images_as_65532_on_a_read_only_root(pods: list[dict], report: Path) -> None:
    """Every pod was a podman container of the image it names, under the Jobs' security context,
    and what it wrote onto the root-owned claim belongs to uid 65532 (no user namespace)."""
    ids = {image: (build.inspect(image) or {}).get("Id") for image in IMAGES.values()}
    for pod in pods:
        for container in pod["spec"]["containers"]:
            security = {**pod["spec"].get("securityContext", {}), **container.get("securityContext", {})}
            assert security.get("runAsUser") == 65532 and security.get("runAsNonRoot") is True, security
            assert security.get("readOnlyRootFilesystem") is True, security
        for status in pod["status"]["containerStatuses"]:
            assert status["containerID"].startswith("podman://"), status
            assert ids[status["image"]] and status["imageID"] == ids[status["image"]], (status, ids)
    assert report.stat().st_uid == 65532
