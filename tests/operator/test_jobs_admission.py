"""The operator's Job manifests against the local API server's Go-side validation and admission.

The pure builders (operator/jobs.py) are submitted to ``tests.kube``'s in-process API in a
namespace enforcing Pod Security ``restricted``, with the chart's Job ServiceAccount: the Job
must be admitted (batch/v1 validation, label syntax, pod-spec rules) and the pod the job
controller would create from its template must pass ServiceAccount and Pod Security admission.
Cases marked ``xfail(strict=True)`` are product defects the strict server exposes (issue 11,
"Works on a real cluster"); each turns into a failure the moment it is fixed, so the marker
must then be removed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from benchcal.errors import BadInput
from benchcal.spec import parse_run
from benchcal_operator import jobs
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
    api.create(api.type("", "v1", "serviceaccounts"), "ml", {"metadata": {"name": "benchcal-job"}})
    return api


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
    for ckpt in run.checkpoints:
        assert _admit(api, jobs.build_evaluator_job(run, ckpt, SETTINGS)) == []
    assert _admit(api, jobs.build_reducer_job(run, SETTINGS)) == []


def test_missing_job_service_account_refuses_the_pods(api: Api) -> None:
    run = parse_run(body_with())
    job = jobs.build_evaluator_job(run, run.checkpoints[0], Settings(job_service_account="elsewhere"))
    with pytest.raises(ApiError) as refused:
        _admit(api, job)
    assert refused.value.code == 403 and 'serviceaccount "elsewhere" not found' in refused.value.message


@pytest.mark.xfail(
    strict=True,
    raises=ApiError,
    reason="issue 11 item 3: Job names are not budgeted for the Indexed pod suffix",
)
def test_sharded_run_with_a_long_name_gets_an_admissible_job(api: Api) -> None:
    body = body_with(evaluator={"shards": 4})
    body["metadata"]["name"] = "r" * 50
    body["spec"]["checkpoints"][0]["name"] = "c" * 12  # <run>-eval-<ckpt>: exactly 63 characters
    run = parse_run(body)
    _admit(api, jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))


def _refused_early_or_admitted(api: Api, **spec: Any) -> None:
    """A spec must fail in benchcal.spec (Accepted=False) or build Jobs the server admits."""
    try:
        run = parse_run(body_with(**spec))
    except BadInput:
        return
    _admit(api, jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))


@pytest.mark.xfail(
    strict=True, raises=ApiError, reason="issue 11 item 4: queueName is not checked as a label value"
)
def test_a_queue_name_that_is_no_label_value_is_refused_early(api: Api) -> None:
    _refused_early_or_admitted(api, queueName="gpu queue")


@pytest.mark.xfail(
    strict=True, raises=ApiError, reason="issue 11 item 4: user volumeMounts may collide with the operator's"
)
def test_a_user_mount_at_tmp_is_refused_early(api: Api) -> None:
    _refused_early_or_admitted(
        api,
        evaluator={
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        },
    )
