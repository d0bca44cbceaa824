"""Admission and Go-side validation of the local server, with the real server's messages.

ServiceAccount admission, Pod Security admission, batch/v1 Indexed Job names, label syntax,
pod-spec volume rules, and the CRD's CEL rules (the real CRD from crds/) on create and update.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.kube.apiserver import LocalApiServer
from tests.kube.fixtures import Kubectl, kubectl_available
from tests.kube.rest import Rest

REPO = Path(__file__).resolve().parents[2]
PODS = "/api/v1/namespaces/default/pods"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
RUNS = "/apis/benchcal.dev/v1alpha1/namespaces/default/calibrationruns"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "c",
            "image": "busybox",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
}


@pytest.fixture
def rest(kube_server: LocalApiServer) -> Rest:
    return Rest.admin(kube_server)


def _pod(name: str, spec: dict | None = None, **meta: object) -> dict:
    return {"metadata": {"name": name, **meta}, "spec": copy.deepcopy(spec or RESTRICTED_POD)}


def _namespace(rest: Rest, name: str, labels: dict[str, str]) -> None:
    code, body = rest.post("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    assert code == 201, body


# ------------------------------------------------------------ ServiceAccount admission
def test_pod_naming_a_missing_service_account_is_refused(rest: Rest) -> None:
    spec = {**RESTRICTED_POD, "serviceAccountName": "ghost"}
    code, err = rest.post(PODS, {"metadata": {"generateName": "job-"}, "spec": spec})
    assert code == 403 and err["reason"] == "Forbidden"
    # before name generation, so the prefix names the pod, as on a real server
    assert err["message"] == (
        'pods "job-" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found'
    )


def test_service_account_admission_projects_the_token_volume(rest: Rest) -> None:
    code, pod = rest.post(PODS, _pod("p"))
    assert code == 201 and pod["spec"]["serviceAccountName"] == "default"
    (vol,) = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    kinds = [next(iter(s)) for s in vol["projected"]["sources"]]
    assert kinds == ["serviceAccountToken", "configMap", "downwardAPI"]
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert {"name": vol["name"], "readOnly": True, "mountPath": TOKEN_MOUNT} in mounts
    code, pod = rest.post(PODS, _pod("q", {**RESTRICTED_POD, "automountServiceAccountToken": False}))
    assert code == 201 and "volumes" not in pod["spec"]


# ------------------------------------------------------------ Pod Security admission
def test_restricted_namespace_refuses_a_privileged_pod_and_admits_a_compliant_one(rest: Rest) -> None:
    _namespace(rest, "locked", {"pod-security.kubernetes.io/enforce": "restricted"})
    pods = "/api/v1/namespaces/locked/pods"
    bad = {
        "hostNetwork": True,
        "volumes": [{"name": "host", "hostPath": {"path": "/etc"}}],
        "containers": [{"name": "app", "image": "busybox", "securityContext": {"privileged": True}}],
    }
    code, err = rest.post(pods, _pod("bad", bad))
    assert code == 403 and err["reason"] == "Forbidden" and err["details"] == {"name": "bad", "kind": "pods"}
    assert err["message"] == (
        'pods "bad" is forbidden: violates PodSecurity "restricted:latest": '
        "host namespaces (hostNetwork=true), "
        'privileged (container "app" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), '
        'restricted volume types (volume "host" uses restricted volume type "hostPath"), '
        'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    code, pod = rest.post(pods, _pod("good"))
    assert code == 201, pod
    # the projected token volume admission adds is allowed by restricted, and so is a PVC
    spec = {**RESTRICTED_POD, "volumes": [{"name": "r", "persistentVolumeClaim": {"claimName": "c"}}]}
    assert rest.post(pods, _pod("pvc", spec))[0] == 201


def test_baseline_allows_what_restricted_refuses_but_not_privileged(rest: Rest) -> None:
    _namespace(rest, "base", {"pod-security.kubernetes.io/enforce": "baseline"})
    pods = "/api/v1/namespaces/base/pods"
    plain = {"containers": [{"name": "c", "image": "busybox"}]}
    assert rest.post(pods, _pod("plain", plain))[0] == 201
    adds = {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "CHOWN"]}},
            }
        ]
    }
    code, err = rest.post(pods, _pod("caps", adds))
    assert code == 403 and err["message"].endswith(
        'violates PodSecurity "baseline:latest": non-default capabilities '
        '(container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)'
    )


def test_jobs_are_admitted_with_a_warning_and_their_pods_refused_later(
    kube_server: LocalApiServer, rest: Rest
) -> None:
    _namespace(rest, "warned", {"pod-security.kubernetes.io/enforce": "restricted"})
    job = {
        "metadata": {"name": "loose"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }
    api = kube_server.api
    obj, warnings = api.create(api.type("batch", "v1", "jobs"), "warned", job)
    assert obj["metadata"]["name"] == "loose"
    assert len(warnings) == 1 and warnings[0].startswith(
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
    )


def test_invalid_pod_security_labels_are_refused(rest: Rest) -> None:
    code, err = rest.post(
        "/api/v1/namespaces",
        {"metadata": {"name": "typo", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}},
    )
    assert code == 422 and err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "strict": must be one of privileged, baseline, restricted',
            "field": "metadata.labels[pod-security.kubernetes.io/enforce]",
        }
    ]


# ------------------------------------------------------------ batch/v1 and metadata validation
def _job(name: str, completions: int | None = None, **template_extra: object) -> dict:
    spec: dict = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}],
                **template_extra,
            }
        }
    }
    if completions is not None:
        spec.update(completionMode="Indexed", completions=completions, parallelism=1)
    return {"metadata": {"name": name}, "spec": spec}


def test_indexed_job_names_must_leave_room_for_the_index(rest: Rest) -> None:
    assert rest.post(JOBS, _job("a" * 61, completions=10))[0] == 201  # a...a-9: 63 characters
    name = "b" * 61
    code, err = rest.post(JOBS, _job(name, completions=11))  # b...b-10: 64
    assert code == 422
    assert err["message"] == (
        f'Job.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
        f"will not able to create pod with invalid DNS label: {name}-10"
    )
    assert rest.post(JOBS, _job("dotted.name", completions=2))[0] == 422  # a pod hostname has no dots
    assert rest.post(JOBS, _job("dotted.name"))[0] == 201  # a non-indexed Job may (a DNS subdomain)


def test_a_job_name_too_long_for_its_labels_is_refused(rest: Rest) -> None:
    name = "j" * 64
    code, err = rest.post(JOBS, _job(name))
    assert code == 422
    assert (
        f'spec.template.labels: Invalid value: "{name}": must be no more than 63 characters' in err["message"]
    )


def test_label_values_and_keys_are_validated_on_every_object(rest: Rest) -> None:
    code, err = rest.post(
        "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "l", "labels": {"queue": "gpu queue"}}}
    )
    assert code == 422
    assert err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "gpu queue": a valid label must be an empty string or consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            "field": "metadata.labels",
        }
    ]
    code, err = rest.post(
        JOBS, {**_job("q"), "metadata": {"name": "q", "labels": {"kueue.x-k8s.io/queue-name": "team/gpu"}}}
    )
    assert code == 422 and 'metadata.labels: Invalid value: "team/gpu"' in err["message"]
    code, err = rest.post(
        "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "k", "labels": {"a/b/c": "x"}}}
    )
    assert code == 422 and "a qualified name must consist of alphanumeric characters" in err["message"]


def test_duplicate_volume_names_and_mount_paths_are_refused(rest: Rest) -> None:
    volumes = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "x", "emptyDir": {}},
    ]
    job = _job("vols", volumes=volumes)
    job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "x", "mountPath": "/tmp"},
        {"name": "nope", "mountPath": "/data"},
    ]
    code, err = rest.post(JOBS, job)
    assert code == 422
    causes = [(c["field"], c["message"], c["reason"]) for c in err["details"]["causes"]]
    assert causes == [
        ("spec.template.spec.volumes[1].name", 'Duplicate value: "tmp"', "FieldValueDuplicate"),
        (
            "spec.template.spec.containers[0].volumeMounts[1].mountPath",
            'Invalid value: "/tmp": must be unique',
            "FieldValueInvalid",
        ),
        ("spec.template.spec.containers[0].volumeMounts[2].name", 'Not found: "nope"', "FieldValueNotFound"),
    ]


# ------------------------------------------------------------ CEL rules of the real CRD
@pytest.fixture
def crd_server(kube_server: LocalApiServer, rest: Rest) -> Rest:
    crd = yaml.safe_load((REPO / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    assert rest.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    return rest


def _run(name: str = "cel") -> dict:
    ckpts = [
        {"name": f"s{i}", "model": {"builtin": f"tiny-series/s{i}"}, "flops": 1.0e11 * i} for i in (1, 2, 3)
    ]
    return {
        "apiVersion": "benchcal.dev/v1alpha1",
        "kind": "CalibrationRun",
        "metadata": {"name": name},
        "spec": {"checkpoints": ckpts, "suite": {"benchmarks": [{"name": "copa"}, {"name": "piqa"}]}},
    }


def test_cel_rule_refuses_on_create_with_the_422_shape(crd_server: Rest) -> None:
    run = _run()
    run["spec"]["checkpoints"][0]["model"] = {"builtin": "tiny-series/s1", "path": "/m"}
    code, err = crd_server.post(RUNS, run)
    assert code == 422 and err["reason"] == "Invalid"
    assert err["details"] == {
        "name": "cel",
        "group": "benchcal.dev",
        "kind": "CalibrationRun",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "object": set exactly one model source (path, pvc, hub, uri or builtin)',
                "field": "spec.checkpoints[0].model",
            }
        ],
    }
    assert err["message"] == (
        'CalibrationRun.benchcal.dev "cel" is invalid: spec.checkpoints[0].model: Invalid value: "object": '
        "set exactly one model source (path, pvc, hub, uri or builtin)"
    )


STAYS = (
    "a checkpoint that stays in spec.checkpoints (same name) keeps its model, flops, params and tokens: its "
    "finished results were computed from them; add other weights as a checkpoint under a new name, or create "
    "a new CalibrationRun"
)


def test_a_run_grows_but_a_staying_checkpoint_keeps_its_model(crd_server: Rest) -> None:
    """Issue 15: checkpoints may be appended and removed; a staying one's model may not change."""
    body = _run()
    body["spec"]["results"] = {"pvc": {"claimName": "r"}}
    code, run = crd_server.post(RUNS, body)
    assert code == 201, run
    grown = copy.deepcopy(run)
    grown["spec"]["checkpoints"].append(
        {"name": "s5", "model": {"builtin": "tiny-series/s5"}, "flops": 5.0e11}
    )
    grown["spec"]["suite"]["benchmarks"].append({"name": "arc_easy"})
    grown["spec"]["suite"]["shots"].append(2)
    code, run = crd_server.put(f"{RUNS}/cel", grown)
    assert code == 200, run
    assert [c["name"] for c in run["spec"]["checkpoints"]] == ["s1", "s2", "s3", "s5"]
    assert run["metadata"]["generation"] == 2

    changed = copy.deepcopy(run)
    changed["spec"]["checkpoints"][1]["model"] = {"builtin": "tiny-series/s4"}
    code, err = crd_server.put(f"{RUNS}/cel", changed)
    assert code == 422 and err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "object": {STAYS}',
            "field": "spec.checkpoints[1]",
        }
    ]
    assert (
        err["message"]
        == f'CalibrationRun.benchcal.dev "cel" is invalid: spec.checkpoints[1]: Invalid value: "object": {STAYS}'
    )

    removed = copy.deepcopy(run)
    del removed["spec"]["checkpoints"][0]  # removal is allowed: it leaves the reduction, results stay
    code, run = crd_server.put(f"{RUNS}/cel", removed)
    assert code == 200, run

    for edit, message in [
        (
            lambda r: r["spec"]["suite"].update(seed=7),
            "spec.suite.preset, seed, fewshotSampling and limit are immutable",
        ),
        (lambda r: r["spec"]["suite"]["benchmarks"].pop(), "spec.suite.benchmarks may only grow"),
        (
            lambda r: r["spec"]["evaluator"].update(dtype="float32"),
            "spec.evaluator.dtype and maxLength are immutable",
        ),
    ]:
        bad = copy.deepcopy(run)
        edit(bad)
        code, err = crd_server.put(f"{RUNS}/cel", bad)
        assert (
            code == 422 and message in err["message"] and "create a new CalibrationRun" in err["message"]
        ), err
    # a change elsewhere in spec is allowed (suspend is mutable)
    code, out = crd_server.patch(f"{RUNS}/cel", {"spec": {"suspend": True}})
    assert code == 200 and out["spec"]["suspend"] is True


def test_a_run_without_results_cannot_add_benchmarks(crd_server: Rest) -> None:
    """Its finished results lived in the pods' emptyDir: a grown suite would recompute everything."""
    code, run = crd_server.post(RUNS, _run())
    assert code == 201
    grown = copy.deepcopy(run)
    grown["spec"]["suite"]["benchmarks"].append({"name": "arc_easy"})
    code, err = crd_server.put(f"{RUNS}/cel", grown)
    assert code == 422 and err["details"]["causes"][0]["field"] == "spec"
    assert "spec.suite can grow only in a run with spec.results" in err["message"]
    more = copy.deepcopy(run)  # checkpoints may still be added: new ones have nothing to reuse
    more["spec"]["checkpoints"].append(
        {"name": "s5", "model": {"builtin": "tiny-series/s5"}, "flops": 5.0e11}
    )
    code, out = crd_server.put(f"{RUNS}/cel", more)
    assert code == 200, out


def test_reordering_a_list_map_passes_equality_as_on_a_real_server(crd_server: Rest) -> None:
    code, run = crd_server.post(RUNS, _run())
    assert code == 201
    reordered = copy.deepcopy(run)
    reordered["spec"]["checkpoints"].reverse()  # x-kubernetes-list-type: map, keyed by name
    reordered["spec"]["suite"]["benchmarks"].reverse()
    code, out = crd_server.put(f"{RUNS}/cel", reordered)
    assert code == 200, out
    assert [c["name"] for c in out["spec"]["checkpoints"]] == ["s3", "s2", "s1"]
    shots = copy.deepcopy(out)
    shots["spec"]["suite"]["shots"] = list(reversed(out["spec"]["suite"]["shots"]))  # list-type set
    code, out = crd_server.put(f"{RUNS}/cel", shots)
    assert code == 200, out
    out["spec"]["suite"]["shots"] = [0, 1]
    code, err = crd_server.put(f"{RUNS}/cel", out)  # a smaller set is still a change (a removal)
    assert code == 422 and "spec.suite.shots may only grow" in err["message"]


DISTINCT = (
    "spec.checkpoints needs at least three distinct training FLOPs (flops, or 6 * params * tokens): "
    "checkpoints with equal FLOPs are pooled, and a trend in FLOPs needs three points to be tested"
)


def test_fewer_than_three_checkpoints_or_distinct_flops_are_refused(crd_server: Rest) -> None:
    """The reducer's minimum (benchcal.classification.MIN_CHECKPOINTS), before any Job exists."""
    two = _run("two")
    del two["spec"]["checkpoints"][2]
    code, err = crd_server.post(RUNS, two)
    # minItems is not a blocking error (as on a real server): the CEL rule runs too and says why
    assert code == 422 and err["message"] == (
        'CalibrationRun.benchcal.dev "two" is invalid: [spec.checkpoints: Invalid value: 2: '
        "spec.checkpoints in body should have at least 3 items, "
        f'spec.checkpoints: Invalid value: "array": {DISTINCT}]'
    ), err

    same = _run("same")
    same["spec"]["checkpoints"][2]["flops"] = 2.0e11  # s2 and s3: two distinct values
    code, err = crd_server.post(RUNS, same)
    assert code == 422 and err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "array": {DISTINCT}',
            "field": "spec.checkpoints",
        }
    ], err
    resolved = _run("resolved")  # s3's 6 * params * tokens = 2e11 = s2's flops
    resolved["spec"]["checkpoints"][2] = {
        "name": "s3",
        "model": {"builtin": "tiny-series/s3"},
        "params": 1.0e9,
        "tokens": 2.0e11 / 6.0e9,
    }
    code, err = crd_server.post(RUNS, resolved)
    assert code == 422 and DISTINCT in err["message"], err

    code, run = crd_server.post(RUNS, _run())
    assert code == 201, run
    pooled = copy.deepcopy(run)  # a later edit may not leave fewer than three distinct values either
    pooled["spec"]["checkpoints"].append(
        {"name": "s4", "model": {"builtin": "tiny-series/s4"}, "flops": 3.0e11}
    )
    code, run = crd_server.put(f"{RUNS}/cel", pooled)
    assert code == 200, run
    del run["spec"]["checkpoints"][0]
    code, err = crd_server.put(f"{RUNS}/cel", run)
    assert code == 422 and DISTINCT in err["message"], err


def test_root_rule_on_metadata_name(crd_server: Rest) -> None:
    run = _run("Has_Upper")
    code, err = crd_server.post(RUNS, run)
    assert code == 422  # the object-meta subdomain check and the CRD's root rule both refuse it
    fields = [c["field"] for c in err["details"]["causes"]]
    assert fields == ["metadata.name", "<nil>"]
    assert err["details"]["causes"][1]["message"].startswith(
        'Invalid value: "object": metadata.name must be a DNS label'
    )


def test_a_crd_with_a_rule_that_does_not_parse_is_refused(rest: Rest) -> None:
    crd = yaml.safe_load((REPO / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["x-kubernetes-validations"] = [{"rule": "self.checkpoints ==", "message": "broken"}]
    code, err = rest.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json.loads(json.dumps(crd))
    )
    assert code == 422 and "compilation failed" in err["message"]


@pytest.mark.skipif(not kubectl_available(), reason="kubectl is not on PATH")
def test_kubectl_shows_the_cel_message(crd_server: Rest, kubectl: Kubectl) -> None:
    run = _run("via-kubectl")
    kubectl("apply", "-f", "-", input=json.dumps(run))
    run["spec"]["checkpoints"][0]["model"] = {"builtin": "tiny-series/s2"}
    out = kubectl("apply", "-f", "-", input=json.dumps(run), check=False)
    assert out.returncode != 0
    assert f'spec.checkpoints[0]: Invalid value: "object": {STAYS}' in " ".join(out.stderr.split())
