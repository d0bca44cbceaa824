"""Pure Job manifest builders: names, labels, ownership, failure policy, the evaluate command."""

from __future__ import annotations

import pytest

from benchcal import commands, naming, work
from benchcal_operator import jobs
from benchcal_operator.settings import Settings

from .conftest import EV, PAIRS_KEY

SETTINGS = Settings(evaluator_image="eval:1", reducer_image="reduce:1")


def _container(job):
    return job["spec"]["template"]["spec"]["containers"][0]


def _publisher(job):
    (sidecar,) = job["spec"]["template"]["spec"]["initContainers"]
    return sidecar


def _env(job):
    return {e["name"]: e for e in _container(job)["env"]}


def test_evaluator_job_is_a_valid_batch_v1_job(make_run):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    run = make_run()
    for ckpt in run.checkpoints:
        kubernetes_validate.validate(jobs.build_evaluator_job(run, ckpt, SETTINGS), "1.32", strict=True)
    kubernetes_validate.validate(jobs.build_reducer_job(run, SETTINGS), "1.32", strict=True)


def test_evaluator_job_identity_labels_and_owner(make_run):
    run = make_run()
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    meta = job["metadata"]
    assert meta["name"] == EV["s1"] and meta["namespace"] == "ml"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "benchcal",
        "benchcal.dev/run": "tiny",
        "benchcal.dev/component": "evaluator",
        "benchcal.dev/checkpoint": "s1",
        "benchcal.dev/pairs-key": PAIRS_KEY,
    }
    # the pairs it evaluates, as `benchcal evaluate --tasks` spells them (the planner reads them back)
    assert meta["annotations"] == {"benchcal.dev/pairs": "arc_easy:0,3;jeopardy:0,3"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "benchcal.dev/v1alpha1",
            "kind": "CalibrationRun",
            "name": "tiny",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["spec"]["template"]["metadata"]["labels"]["benchcal.dev/checkpoint"] == "s1"
    assert "ttlSecondsAfterFinished" not in job["spec"]


def test_failure_policy_fails_fast_on_bad_input_and_ignores_preemption(make_run):
    run = make_run(evaluator={"backoffLimit": 2, "activeDeadlineSeconds": 3600})
    spec = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)["spec"]
    assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] == 3600
    defaults = jobs.build_evaluator_job(make_run(), make_run().checkpoints[0], SETTINGS)["spec"]
    # the CRD's defaults: one retry, and a day per checkpoint (evictions do not count as failures,
    # so the deadline is what bounds a pod that keeps being evicted; item 13)
    assert defaults["backoffLimit"] == 1 and defaults["activeDeadlineSeconds"] == 86400
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "evaluator", "operator": "In", "values": [2]},
    }
    assert rules[1]["action"] == "Ignore" and rules[1]["onPodConditions"][0]["type"] == "DisruptionTarget"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_evaluate_command_follows_the_cli_contract(make_run):
    run = make_run(results={"pvc": {"claimName": "res", "path": "runs/tiny"}})
    cmd = _container(jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))["args"]
    assert cmd[:2] == ["benchcal", "evaluate"]
    args = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert args["--model"] == "builtin:tiny-series/s1"
    assert args["--tasks"] == "arc_easy:0,3;jeopardy:0,3" and "--shots" not in args
    assert args["--out"] == "/benchcal/results/runs/tiny/checkpoints/s1"  # benchcal.layout
    assert args["--checkpoint"] == "s1" and float(args["--flops"]) == 1e15
    assert args["--limit"] == "20" and args["--seed"] == "1234" and args["--dtype"] == "auto"
    assert args["--outbox"] == "/benchcal/outbox" and "--publish-configmap" not in args
    # the container args are exactly the shared command line, with the pod's model and out paths
    assert cmd == commands.evaluate_command(
        run,
        run.checkpoints[0],
        model="builtin:tiny-series/s1",
        out_dir="/benchcal/results/runs/tiny/checkpoints/s1",
        outbox="/benchcal/outbox",
    )
    publisher = _publisher(jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))
    assert publisher["args"] == commands.publish_command(
        outbox="/benchcal/outbox", target="ml/tiny-summary-s1"
    )


def test_different_shot_lists_are_one_command_without_a_shell(make_run):
    run = make_run(
        suite={"benchmarks": [{"name": "arc_easy", "shots": [0]}, {"name": "jeopardy"}], "shots": [0, 3]}
    )
    cmd = _container(jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))["args"]
    # tini (the image's ENTRYPOINT) forwards SIGTERM straight to the evaluator: no `sh -c` in between
    assert cmd[:2] == ["benchcal", "evaluate"] and "sh" not in cmd
    assert cmd.count("evaluate") == 1 and cmd.count("--outbox") == 1
    assert cmd[cmd.index("--tasks") + 1] == "arc_easy:0;jeopardy:0,3"


def test_pvc_model_is_mounted_read_only(make_run):
    run = make_run()
    job = jobs.build_evaluator_job(run, run.checkpoints[1], SETTINGS)
    vols = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert vols["benchcal-model"]["persistentVolumeClaim"] == {"claimName": "ckpts", "readOnly": True}
    assert "/benchcal/model/s2" in _container(job)["args"]


def test_hub_model_goes_online_with_token_from_secret(make_run):
    run = make_run()
    job = jobs.build_evaluator_job(run, run.checkpoints[2], SETTINGS)
    env = _env(job)
    assert env["HF_HUB_OFFLINE"]["value"] == "0"
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert "--revision" in _container(job)["args"]
    offline = _env(jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS))
    assert offline["HF_HUB_OFFLINE"]["value"] == "1" and "HF_TOKEN" not in offline


def test_pod_is_hardened_and_takes_only_allow_listed_overrides(make_run):
    ev = {
        "image": "custom:2",
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"gpu": "h100"},
        "runtimeClassName": "nvidia",
        "env": [{"name": "EXTRA", "value": "1"}],
    }
    run = make_run(evaluator=ev)
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    pod = job["spec"]["template"]["spec"]
    c = _container(job)
    assert c["image"] == "custom:2" and c["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert pod["tolerations"] == ev["tolerations"] and pod["nodeSelector"] == {"gpu": "h100"}
    assert pod["serviceAccountName"] == "tiny-benchcal"  # the run's own (identity.py)
    assert pod["securityContext"]["runAsNonRoot"] is True
    # uid 65532 writes a root-owned results volume only through fsGroup (tests/kube/test_containers.py)
    assert {k: pod["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy")} == {
        "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532, "fsGroupChangePolicy": "OnRootMismatch",
    }  # fmt: skip
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert _env(job)["EXTRA"]["value"] == "1"


def test_shards_make_an_indexed_job_with_per_shard_configmaps(make_run):
    run = make_run(evaluator={"shards": 4})
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 4 and job["spec"]["parallelism"] == 4
    publisher = _publisher(job)
    assert "ml/tiny-summary-s1-$(BENCHCAL_SHARD_INDEX)" in publisher["args"]
    # Kubernetes expands $(VAR) from the container's own env: the publisher has the index
    assert "BENCHCAL_SHARD_INDEX" in {e["name"] for e in publisher["env"]}
    assert _env(job)["BENCHCAL_NUM_SHARDS"]["value"] == "4"


def test_kueue_labels_pass_through_to_jobs(make_run, run_body):
    run = make_run(queueName="gpu-queue")
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    assert job["metadata"]["labels"][naming.KUEUE_QUEUE_LABEL] == "gpu-queue"
    assert naming.KUEUE_QUEUE_LABEL not in job["spec"]["template"]["metadata"]["labels"]


def test_reducer_job_command(make_run):
    run = make_run(
        classification={"alpha": 0.01, "strict": True}, results={"pvc": {"claimName": "res", "path": "tiny"}}
    )
    job = jobs.build_reducer_job(run, SETTINGS)
    assert job["metadata"]["name"] == naming.reducer_job_name("tiny", work.reduction_key(run))
    assert job["metadata"]["labels"]["benchcal.dev/reduction-key"] == work.reduction_key(run)
    assert job["metadata"]["annotations"] == {"benchcal.dev/checkpoints": "s1,s2,s3"}
    assert _container(job)["image"] == "reduce:1"
    assert _container(job)["args"] == [
        "benchcal",
        "reduce",
        "--from-configmaps",
        "ml/tiny",
        "--write-status",
        "ml/tiny",
        "--generation",  # the reducer's status.history entry is this generation's
        str(run.generation),
        "--checkpoints",
        "s1,s2,s3",
        "--out",
        "/benchcal/results/tiny/report",
        "--alpha",
        "0.01",
        "--strict",
    ]


@pytest.mark.parametrize(
    ("run", "ckpt"),
    [("tiny", "s1"), ("r" * 63, "c" * 40), ("a" * 30 + "-", "b" * 40)],
)
def test_child_names_are_dns_labels_and_deterministic(run, ckpt):
    key = "0123456789"
    name = naming.evaluator_job_name(run, ckpt, key)
    assert len(name) <= 63 - len("-15") and not name.endswith("-")
    assert name == naming.evaluator_job_name(run, ckpt, key)
    assert name != naming.evaluator_job_name(run, ckpt[:-1] + "x", key)
    assert name != naming.evaluator_job_name(run, ckpt, "9876543210")  # other pairs: another Job
    reducer = naming.reducer_job_name(run, key)
    assert len(reducer) <= 63 and reducer != naming.reducer_job_name(run, "9876543210")


def test_pod_security_context_makes_volumes_writable_and_is_overridable(make_run):
    """Item 2: uid/gid/fsGroup 65532 with OnRootMismatch by default; the run or the operator may
    replace them (OpenShift restricted-v2 assigns the UID itself: {} leaves them unset)."""
    run = make_run()
    for job in (
        jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS),
        jobs.build_reducer_job(run, SETTINGS),
    ):
        assert job["spec"]["template"]["spec"]["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    openshift = make_run(evaluator={"podSecurityContext": {}})
    sc = jobs.build_evaluator_job(openshift, openshift.checkpoints[0], SETTINGS)["spec"]["template"]["spec"]
    assert sc["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    operator_default = Settings(job_pod_security_context={"fsGroup": 2000})
    sc = jobs.build_reducer_job(run, operator_default)["spec"]["template"]["spec"]["securityContext"]
    assert sc == {"runAsNonRoot": True, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}
    own = make_run(evaluator={"podSecurityContext": {"runAsUser": 1001, "fsGroup": 1001}})
    sc = jobs.build_evaluator_job(own, own.checkpoints[0], operator_default)["spec"]["template"]["spec"]
    assert sc["securityContext"]["runAsUser"] == 1001 and sc["securityContext"]["fsGroup"] == 1001


def test_scratch_has_a_size_limit_from_the_spec(make_run):
    """Item 13: /tmp (HF downloads) is bounded: a pod writing more is evicted, not the node."""
    run = make_run()
    vols = {
        v["name"]: v
        for v in jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)["spec"]["template"]["spec"][
            "volumes"
        ]
    }
    assert vols["benchcal-tmp"]["emptyDir"] == {"sizeLimit": "100Gi"}  # the CRD's default
    run = make_run(evaluator={"scratchSize": "300Gi"})
    vols = {
        v["name"]: v
        for v in jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)["spec"]["template"]["spec"][
            "volumes"
        ]
    }
    assert vols["benchcal-tmp"]["emptyDir"] == {"sizeLimit": "300Gi"}


def test_only_the_publisher_sidecar_holds_the_service_account_token(make_run):
    """Checkpoint code (trustRemoteCode) and code-eval samples run in the evaluator container:
    no token there, neither automounted nor projected; the publisher sidecar alone mounts it."""
    run = make_run(evaluator={"volumes": [{"name": "data", "emptyDir": {}}],
                              "volumeMounts": [{"name": "data", "mountPath": "/data"}]})  # fmt: skip
    job = jobs.build_evaluator_job(run, run.checkpoints[0], SETTINGS)
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    token_volumes = {
        v["name"]
        for v in pod["volumes"]
        if any("serviceAccountToken" in src for src in (v.get("projected") or {}).get("sources", []))
    }
    assert token_volumes == {jobs.TOKEN_VOLUME}
    evaluator, publisher = _container(job), _publisher(job)
    assert not token_volumes & {m["name"] for m in evaluator["volumeMounts"]}
    assert all(not m["mountPath"].startswith("/var/run/secrets") for m in evaluator["volumeMounts"])
    assert not any(e.get("valueFrom", {}).get("secretKeyRef") for e in evaluator["env"])
    # a native sidecar: started before the evaluator, stopped after it, never counted for the phase
    assert publisher["name"] == "publisher" and publisher["restartPolicy"] == "Always"
    assert publisher["image"] == SETTINGS.reducer_image  # benchcal + kubernetes client, no model code
    mounts = {m["mountPath"]: m for m in publisher["volumeMounts"]}
    assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"] == {
        "name": jobs.TOKEN_VOLUME, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True,
    }  # fmt: skip
    # it shares only the outbox with the evaluator: no /tmp (HOME) the evaluator could plant code in
    shared = {m["name"] for m in publisher["volumeMounts"]} & {m["name"] for m in evaluator["volumeMounts"]}
    assert shared == {jobs.OUTBOX_VOLUME}
    assert {"name": "PYTHONNOUSERSITE", "value": "1"} in publisher["env"]
    assert all(e["name"].startswith(("BENCHCAL_", "PYTHON")) for e in publisher["env"])
    assert publisher["securityContext"] == jobs.container_security()
    # the reducer runs only benchcal's code and keeps its token (docs/operations.md, threat model)
    assert (
        "automountServiceAccountToken"
        not in jobs.build_reducer_job(run, SETTINGS)["spec"]["template"]["spec"]
    )


def test_pods_that_leave_the_cluster_are_labelled_for_the_egress_policy(make_run):
    run = make_run()  # s1: builtin, s2: claim, s3: hub
    labels = [
        jobs.build_evaluator_job(run, ckpt, SETTINGS)["spec"]["template"]["metadata"]["labels"]
        for ckpt in run.checkpoints
    ]
    assert [lab.get(naming.EXTERNAL_EGRESS_LABEL) for lab in labels] == [None, None, "true"]
    # object-store results: every checkpoint's pod writes out of the cluster
    s3 = make_run(results={"uri": "s3://bucket/runs/tiny"})
    job = jobs.build_evaluator_job(s3, s3.checkpoints[0], SETTINGS)
    assert job["spec"]["template"]["metadata"]["labels"][naming.EXTERNAL_EGRESS_LABEL] == "true"
