"""A CalibrationRun that grows (issue 15), through `kubectl apply` as GitOps would do it: three
checkpoints evaluated and classified, two appended, exactly two new evaluator Jobs, nothing
finished recomputed (the summaries count what each evaluator call scored), the status at the new
generation; a benchmark added to every checkpoint resumes from the results volume; a changed
checkpoint model is refused by the API server with the CRD's message."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchcal import naming
from benchcal.publish import CONFIGMAP_KEY
from tests.e2e.harness import E2E, wait_until
from tests.kube.fixtures import kubectl_available

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.podman]

NAME = "e2e-grow"
SERIES = {"s1": 1.3e11, "s2": 2.6e11, "s3": 5.3e11, "s4": 1.05e12, "s5": 2.1e12}
STAYS = "a checkpoint that stays in spec.checkpoints (same name) keeps its model, flops, params and tokens"


def _doc(checkpoints: list[str], benchmarks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "benchcal.dev/v1alpha1",
        "kind": "CalibrationRun",
        "metadata": {"name": NAME},
        "spec": {
            "checkpoints": [
                {"name": c, "model": {"builtin": f"tiny-series/{c}"}, "flops": SERIES[c]} for c in checkpoints
            ],
            "suite": {
                "benchmarks": benchmarks or [{"name": "copa"}, {"name": "bigbench_dyck_languages"}],
                "shots": [0, 1],
                "limit": 8,
                "seed": 1234,
            },
            # growing the suite needs results that outlive the pods (the CRD refuses it otherwise)
            "results": {"pvc": {"claimName": "benchcal-results", "path": NAME}},
        },
    }


@pytest.fixture
def e2e(tmp_path: Path, request: pytest.FixtureRequest):
    if not kubectl_available():
        (pytest.fail if os.environ.get("CI") else pytest.skip)("kubectl is not on PATH")
    world = E2E(tmp_path, runtime="podman")
    if world.runtime == "process":
        request.getfixturevalue("tiny_series_built")  # process pods share the host's cache
    try:
        yield world
    finally:
        world.close()


def _apply(e2e: E2E, doc: dict[str, Any]):
    return e2e.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)


def _evaluators(e2e: E2E) -> dict[str, str]:
    """Evaluator Job name -> its checkpoint."""
    return {
        j["metadata"]["name"]: j["metadata"]["labels"][naming.CHECKPOINT_LABEL]
        for j in e2e.jobs(NAME)
        if j["metadata"]["labels"][naming.COMPONENT_LABEL] == naming.EVALUATOR
    }


def _reducers(e2e: E2E) -> list[dict[str, Any]]:
    return [j for j in e2e.jobs(NAME) if j["metadata"]["labels"][naming.COMPONENT_LABEL] == naming.REDUCER]


def _summaries(e2e: E2E) -> dict[str, dict[str, Any]]:
    """Checkpoint -> the summary its evaluator published (the reducer's input)."""
    selector = naming.selector(NAME, naming.SUMMARY)
    items = e2e.kubectl.json("get", "configmaps", "-l", selector)["items"]
    return {s["checkpoint"]: s for s in (json.loads(cm["data"][CONFIGMAP_KEY]) for cm in items)}


def _wait_generation(e2e: E2E, generation: int) -> dict[str, Any]:
    """The first status that describes ``generation`` (then the run until it finished)."""
    seen: list[dict[str, Any]] = []

    def observed() -> dict[str, Any] | None:
        run = e2e.run(NAME)
        if (run.get("status") or {}).get("observedGeneration") == generation:
            seen.append(run)
            return run if run["status"]["phase"] in ("Succeeded", "Failed", "Invalid") else None
        return None

    final = wait_until(observed, 900, f"{NAME} finished at generation {generation}")
    return {"first": seen[0], "final": final}


def test_appended_checkpoints_run_alone_and_the_status_catches_up(e2e: E2E) -> None:
    first = _doc(["s1", "s2", "s3"])
    assert _apply(e2e, first).returncode == 0
    run = e2e.wait_phase(NAME, timeout=900)
    assert run["status"]["phase"] == "Succeeded", yaml.safe_dump(run["status"])
    gen1 = run["metadata"]["generation"]
    classification1 = run["status"]["classification"]
    jobs1 = _evaluators(e2e)
    assert sorted(jobs1.values()) == ["s1", "s2", "s3"] and len(_reducers(e2e)) == 1
    before = _summaries(e2e)
    assert all(s["pairs_computed"] == 4 and s["requests_scored"] > 0 for s in before.values()), before

    # GitOps: the same file with two more checkpoints, applied again
    grown = _doc(["s1", "s2", "s3", "s4", "s5"])
    applied = _apply(e2e, grown)
    assert applied.returncode == 0, applied.stderr
    seen = _wait_generation(e2e, gen1 + 1)
    status = seen["final"]["status"]
    assert status["phase"] == "Succeeded", yaml.safe_dump(status)
    assert status["progress"] == "5/5" and status["checkpointsSucceeded"] == 5
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Reconciling"]["status"] == "False"
    assert all(c["observedGeneration"] == gen1 + 1 for c in status["conditions"])
    # while it caught up: Ready=False/Progressing (kstatus InProgress), the earlier verdicts still shown
    catching_up = seen["first"]["status"]  # polled every 0.5 s: two evaluations and a reduction take longer
    ready = next(c for c in catching_up["conditions"] if c["type"] == "Ready")
    print(
        f"first status of generation {gen1 + 1}: phase {catching_up['phase']}, Ready {ready['status']}/{ready['reason']}"
    )
    assert catching_up["phase"] in ("Running", "Reducing"), catching_up
    assert ready["status"] == "False" and ready["reason"] == "Progressing", ready
    assert catching_up["classification"] == classification1

    # exactly two new evaluator Jobs (s4, s5), the three finished ones untouched, each created once
    jobs2 = _evaluators(e2e)
    new = {name: ckpt for name, ckpt in jobs2.items() if name not in jobs1}
    assert sorted(new.values()) == ["s4", "s5"] and len(jobs2) == 5, jobs2
    if e2e.local:
        assert set(e2e.job_creations().values()) == {1}, e2e.job_creations()
        assert e2e.forbidden() == [], e2e.forbidden()  # the operator and the pods, under the chart's RBAC
    after = _summaries(e2e)
    for ckpt in ("s1", "s2", "s3"):
        assert after[ckpt] == before[ckpt], ckpt  # never re-published: its Job never ran again
    for ckpt in ("s4", "s5"):
        assert (after[ckpt]["pairs_computed"], after[ckpt]["pairs_resumed"]) == (4, 0), after[ckpt]
    scored = {c: s["requests_scored"] for c, s in after.items()}
    print(f"requests scored per checkpoint after growing: {scored}")

    # a second reducer Job reduced exactly the five checkpoints
    reducers = _reducers(e2e)
    assert len(reducers) == 2, [r["metadata"]["name"] for r in reducers]
    latest = next(
        r for r in reducers if r["metadata"]["annotations"][naming.CHECKPOINTS_ANNOTATION].count(",") == 4
    )
    args = latest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--checkpoints") + 1] == "s1,s2,s3,s4,s5"
    assert {b["name"] for b in status["classification"]["benchmarks"]} == {"copa", "bigbench_dyck_languages"}

    # a benchmark added: every checkpoint gets a Job with all its pairs, and resumes the finished four
    more = _doc(
        ["s1", "s2", "s3", "s4", "s5"],
        [{"name": "copa"}, {"name": "bigbench_dyck_languages"}, {"name": "piqa", "shots": [0]}],
    )
    applied = _apply(e2e, more)
    assert applied.returncode == 0, applied.stderr
    status = _wait_generation(e2e, gen1 + 2)["final"]["status"]
    assert status["phase"] == "Succeeded", yaml.safe_dump(status)
    assert len(_evaluators(e2e)) == 10 and len(_reducers(e2e)) == 3
    resumed = _summaries(e2e)  # republished over the earlier ConfigMaps (replaced, not refused)
    if e2e.local:
        assert e2e.forbidden() == [], e2e.forbidden()
    for ckpt, summary in resumed.items():
        assert (summary["pairs_resumed"], summary["pairs_computed"]) == (4, 1), (ckpt, summary)
        assert len(summary["results"]) == 5
    piqa = {c: s["requests_scored"] for c, s in resumed.items()}
    assert len(set(piqa.values())) == 1, piqa  # the same piqa requests for every checkpoint, nothing else
    print(f"requests scored per checkpoint after adding piqa 0-shot: {piqa}")
    assert "piqa" in {b["name"] for b in status["classification"]["benchmarks"]}

    # what a finished result was computed from cannot change: the API server says so, nothing moves
    changed = copy.deepcopy(more)
    changed["spec"]["checkpoints"][1]["model"] = {"builtin": "tiny-series/s4"}
    refused = _apply(e2e, changed)
    assert refused.returncode != 0
    stderr = " ".join(refused.stderr.split())
    assert STAYS in stderr and "create a new CalibrationRun" in stderr, stderr
    assert e2e.run(NAME)["metadata"]["generation"] == gen1 + 2
