"""The operator's Job manifests against the local API server's Go-side validation and admission.

The pure builders (operator/jobs.py) are submitted to ``tests.kube``'s in-process API in a
namespace enforcing Pod Security ``restricted``, with the chart's Job ServiceAccount: the Jobs
must be admitted (batch/v1 validation, label syntax, pod-spec rules) and the pod the job controller
would create from each template must pass ServiceAccount and Pod Security admission. Specs the
server would refuse must be refused earlier, by ``benchcal.spec`` (issue 11 items 3 and 4).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from benchcal.errors import BadInput
from benchcal.spec import parse_run
from benchcal_operator import identity, jobs
from benchcal_operator.settings import Settings
from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError

from .conftest import body_with

SETTINGS = Settings(evaluator_image="eval:1", reducer_image="reduce:1")
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.fixture
def api() -> Api:
    api = Api()
    api.create(api.type("", "v1", "namespaces"), None, {"metadata": {"name": "ml", "labels": RESTRICTED}})
    return api


def _identity(api: Api, run: Any) -> None:
    """The run's own objects, as the operator creates them before its Jobs (the server validates them)."""
    plurals = {"ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps"}
    for manifest in identity.identity_objects(run):
        kind = manifest["kind"]
        group, version = ("rbac.authorization.k8s.io", "v1") if kind.startswith("Role") else ("", "v1")
        plural = plurals.get(kind) or kind.lower() + "s"
        api.create(api.type(group, version, plural), "ml", copy.deepcopy(manifest))


def _admit(api: Api, job: dict[str, Any]) -> list[str]:
    """Create the Job and one pod from its template, as the job controller would; the warnings."""
    _, warnings = api.create(api.type("batch", "v1", "jobs"), "ml", copy.deepcopy(job))
    template = job["spec"]["template"]
    pod = {
        "metadata": {
            "generateName": f"{job['metadata']['name']}-",
            "labels": dict(template["metadata"]["labels"]),
        },
        "spec": copy.deepcopy(template["spec"]),
    }
    api.create(api.type("", "v1", "pods"), "ml", pod)
    return warnings


VARIANTS = {
    "defaults": {},
    "pvc results": {"results": {"pvc": {"claimName": "res", "path": "runs"}}},
    "sharded": {"evaluator": {"shards": 4}},
    "gpu, kueue": {
        "queueName": "gpu-queue",
        "evaluator": {
            "resources": {"limits": {"nvidia.com/gpu": 1}},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
    "user volume": {
        "evaluator": {
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_jobs_pass_validation_and_restricted_pod_security(api: Api, variant: str) -> None:
    run = parse_run(body_with(**VARIANTS[variant]))
    _identity(api, run)
    for ckpt in run.checkpoints:
        assert _admit(api, jobs.build_evaluator_job(run, ckpt, SETTINGS)) == []
    assert _admit(api, jobs.build_reducer_job(run, SETTINGS)) == []


def test_a_missing_service_account_of_the_run_refuses_the_pods(api: Api) -> None:
    """What the operator's FailedCreate diagnosis reports (item 5)."""
    run = parse_run(body_with(evaluator={"serviceAccountName": "elsewhere"}))
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    with pytest.raises(ApiError) as refused:
        _admit(api, job)
    assert refused.value.code == 403 and 'serviceaccount "elsewhere" not found' in refused.value.message


def test_sharded_run_with_a_long_name_gets_an_admissible_job(api: Api) -> None:
    """Item 3: an Indexed Job's pods are <job>-<index>; the name keeps room for the suffix."""
    body = body_with(evaluator={"shards": 16})
    body["metadata"]["name"] = "r" * 50
    body["spec"]["checkpoints"][0]["name"] = "c" * 12  # <run>-eval-<ckpt>: 63 characters unbudgeted
    run = parse_run(body)
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    assert len(job["metadata"]["name"]) + len("-15") <= 63
    _identity(api, run)
    _admit(api, job)
    longest = parse_run({**body, "metadata": {**body["metadata"], "name": "a" * 63}})
    job = jobs.build_evaluator_job(longest, longest.checkpoints[0], SETTINGS)
    api.create(api.type("batch", "v1", "jobs"), "ml", copy.deepcopy(job))  # batch/v1 Indexed name rule


def _refused_early(**spec: Any) -> str:
    """The spec must fail in benchcal.spec (Accepted=False, the field named), before any create."""
    with pytest.raises(BadInput) as refused:
        parse_run(body_with(**spec))
    return str(refused.value)


def _server_refuses(api: Api, **spec: Any) -> None:
    """Without the early check, the server would refuse the Job or its pods (the test's premise)."""
    body = body_with(**spec)
    run = parse_run(body_with())
    import dataclasses

    raw = body["spec"]
    pod = {
        k: raw["evaluator"][k]
        for k in raw.get("evaluator", {})
        if k in ("volumes", "volumeMounts", "tolerations")
    }
    ev = dataclasses.replace(
        run.evaluator, pod={**run.evaluator.pod, **pod}, resources=raw.get("evaluator", {}).get("resources")
    )
    run = dataclasses.replace(run, evaluator=ev, queue_name=raw.get("queueName", ""))
    with pytest.raises(ApiError):
        _admit(api, jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))


def _scratch(mount: str, name: str = "scratch") -> dict[str, Any]:
    return {"volumes": [{"name": name, "emptyDir": {}}], "volumeMounts": [{"name": name, "mountPath": mount}]}


REFUSED_EARLY = {
    "queue name not a label value": ({"queueName": "gpu queue"}, "queueName"),
    "user mount at /tmp": ({"evaluator": _scratch("/tmp")}, "volumeMounts[0].mountPath"),
    "user mount at /dev/shm/": ({"evaluator": _scratch("/dev/shm/")}, "volumeMounts[0].mountPath"),
    "user mount under /benchcal": ({"evaluator": _scratch("/benchcal/results")}, "volumeMounts[0].mountPath"),
    "duplicate volume names": (
        {"evaluator": {"volumes": [{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}}]}},
        "volumes[1].name",
    ),
    "duplicate mount paths": (
        {
            "evaluator": {
                "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
                "volumeMounts": [{"name": "a", "mountPath": "/data"}, {"name": "b", "mountPath": "/data/"}],
            }
        },
        "volumeMounts[1].mountPath",
    ),
    "hostPath volume": (
        {"evaluator": {"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}},
        "volumes[0].hostPath",
    ),
    "a token for the evaluator": (
        {
            "evaluator": {
                "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]
            }
        },
        "volumes[0].projected.sources[0].serviceAccountToken: not allowed",
    ),
    "toleration Exists with a value": (
        {"evaluator": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}},
        "tolerations[0].value",
    ),
}


@pytest.mark.parametrize("case", REFUSED_EARLY)
def test_specs_the_server_would_refuse_are_refused_early_naming_the_field(api: Api, case: str) -> None:
    spec, field = REFUSED_EARLY[case]
    assert field in _refused_early(**spec)


@pytest.mark.parametrize("case", ["queue name not a label value", "user mount at /tmp", "hostPath volume"])
def test_without_the_early_check_the_server_would_refuse_them(api: Api, case: str) -> None:
    _server_refuses(api, **REFUSED_EARLY[case][0])


def test_gpu_requests_must_equal_limits() -> None:
    message = _refused_early(
        evaluator={"resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}}
    )
    assert "requests[nvidia.com/gpu]" in message
    parse_run(
        body_with(
            evaluator={
                "resources": {"requests": {"nvidia.com/gpu": 1, "cpu": "2"}, "limits": {"nvidia.com/gpu": 1}}
            }
        )
    )
