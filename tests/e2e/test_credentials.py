"""Code from checkpoints cannot read Kubernetes credentials; the publisher sidecar alone publishes.

A run's evaluator gets "checkpoint code": a ``sitecustomize.py`` on its ``PYTHONPATH`` (a
ConfigMap volume, through ``spec.evaluator``), which Python runs before ``benchcal evaluate``,
as model code under ``trustRemoteCode`` would run. It looks for every way to the API a
container can have (a token file in any directory the container was given, a JWT in any file
there, ``KUBECONFIG``, in-cluster config) and exits 97 on the first one. A control pod that
keeps the automounted token shows that it finds one. The process runtime (``E2E_RUNTIME=process``)
rewrites the probe's roots to the container's host directories; under podman they are the real
mounts.
"""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.harness import E2E, IMAGES, load_manifest, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBE = """\
import os, sys


JWT = b"eyJhbG" + b"ci"  # how a JWT starts ('{"alg'), not spelled out: this file must not match


def _probe():
    found = []
    if os.environ.get("KUBECONFIG"):
        found.append("KUBECONFIG=" + os.environ["KUBECONFIG"])
    for root in os.environ.get("PROBE_ROOTS", "").split():
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as f:
                        head = f.read(65536)
                except OSError:
                    continue
                if name == "token" or JWT in head:
                    found.append(path)
    try:
        from kubernetes import config
    except ImportError:
        config = None
    if config is not None:
        try:
            config.load_incluster_config()
            found.append("in-cluster config")
        except config.ConfigException:
            pass
        try:
            config.load_kube_config()
            found.append("kubeconfig")
        except Exception:
            pass
    print("credential-probe: " + ("LEAK " + " ".join(found) if found else "no credentials"), file=sys.stderr, flush=True)
    if found:
        os._exit(97)


_probe()
"""
# every directory an evaluator container is given (but the probe's own), and where tokens usually are
ROOTS = (
    "/var/run/secrets/kubernetes.io/serviceaccount /var/run/secrets /run/secrets "
    "/benchcal/results /benchcal/outbox /tmp /dev/shm"
)
# (under podman the probe could walk "/" too; the process runtime's containers are host processes)
PROBE_VOLUME = {"name": "probe", "configMap": {"name": "credential-probe"}}
PROBE_MOUNT = {"name": "probe", "mountPath": "/probe", "readOnly": True}
PROBE_ENV = [{"name": "PYTHONPATH", "value": "/probe"}, {"name": "PROBE_ROOTS", "value": ROOTS}]


@pytest.fixture
def e2e(tmp_path, request: pytest.FixtureRequest):
    from tests.kube.fixtures import kubectl_available

    if not kubectl_available():
        pytest.skip("kubectl is not on PATH")
    world = E2E(tmp_path, runtime="podman")
    if world.runtime == "process":
        request.getfixturevalue("tiny_series_built")
    try:
        world.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "credential-probe"},
                     "data": {"sitecustomize.py": PROBE}})  # fmt: skip
        yield world
    finally:
        world.close()


def _probed_run(name: str) -> dict:
    doc = load_manifest("tiny-run.yaml")
    doc["metadata"]["name"] = name
    # all three: the reducer needs 3 FLOPs levels (the CRD admits no fewer)
    doc["spec"]["suite"].update(benchmarks=[{"name": "copa"}], shots=[0], limit=4)
    doc["spec"]["results"] = {"pvc": {"claimName": "benchcal-results", "path": name}}
    doc["spec"]["evaluator"] = {"volumes": [PROBE_VOLUME], "volumeMounts": [PROBE_MOUNT], "env": PROBE_ENV}
    return doc


def _evaluator_pods(e2e: E2E, run: str) -> list[dict]:
    return e2e.kubectl.json("get", "pods", "-l", f"benchcal.dev/run={run},benchcal.dev/component=evaluator")[
        "items"
    ]


def _describe(e2e: E2E, pods: list[dict]) -> str:
    out = []
    for pod in pods:
        name = pod["metadata"]["name"]
        out.append(f"--- {name}: {yaml.safe_dump(pod['status'])}")
        for c in ("evaluator", "publisher"):
            out.append(f"--- {c} log:\n{_log(e2e, name, c)[-2000:]}")
    return "\n".join(out)


def _log(e2e: E2E, pod: str, container: str) -> str:
    return e2e.kubectl("logs", pod, "-c", container).stdout


def test_the_evaluator_finds_no_credentials_and_the_publisher_publishes(e2e: E2E) -> None:
    e2e.apply(_probed_run("probed"))
    run = e2e.wait_phase("probed", timeout=900)
    pods = _evaluator_pods(e2e, "probed")
    assert len(pods) == 3, _describe(e2e, pods)
    for pod in pods:
        name = pod["metadata"]["name"]
        evaluator_log = _log(e2e, name, "evaluator")
        assert "credential-probe: no credentials" in evaluator_log, evaluator_log[-3000:]
        checkpoint = pod["metadata"]["labels"]["benchcal.dev/checkpoint"]
        publisher_log = _log(e2e, name, "publisher")
        assert f"published summary of checkpoint {checkpoint} to ConfigMap" in publisher_log, publisher_log
        # the kubelet stopped the sidecar after the evaluator exited; the phase came from the evaluator
        assert pod["status"]["phase"] == "Succeeded"
        states = {c["name"]: c["state"] for c in pod["status"]["initContainerStatuses"]}
        assert "terminated" in states["publisher"]
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert run["status"]["phase"] == "Succeeded", yaml.safe_dump(run["status"])
    summaries = e2e.kubectl.json(
        "get", "configmaps", "-l", "benchcal.dev/run=probed,benchcal.dev/component=summary"
    )
    assert sorted(cm["metadata"]["name"] for cm in summaries["items"]) == [
        f"probed-summary-{c}" for c in ("s1", "s3", "s5")
    ]


def test_the_probe_finds_an_automounted_token(e2e: E2E) -> None:
    """The control: the same probe in a pod that keeps the default automounted token leaks it."""
    sec = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "control"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [PROBE_VOLUME, {"name": "tmp", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": IMAGES["evaluator"], "command": ["python", "-c", "pass"],
                "env": PROBE_ENV, "securityContext": sec,
                "volumeMounts": [PROBE_MOUNT, {"name": "tmp", "mountPath": "/tmp"}],  # as the evaluator's
            }],
        },
    }  # fmt: skip
    e2e.apply(pod)
    done = wait_until(
        lambda: (
            (p := e2e.kubectl.json("get", "pod", "control"))["status"].get("phase") in ("Succeeded", "Failed")
            and p
        ),
        120,
        "the control pod to finish",
    )
    log = _log(e2e, "control", "main")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 97, log
    assert "credential-probe: LEAK" in log and "/token" in log and "config" in log, log


def test_a_refused_publish_fails_the_checkpoint_with_the_servers_message(e2e: E2E) -> None:
    # a user-chosen ServiceAccount (spec.evaluator.serviceAccountName) nobody granted anything: the
    # operator creates no identity for it, so the API server refuses the publisher's patch
    e2e.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "no-rights"}})
    doc = _probed_run("refused")
    doc["spec"]["evaluator"]["serviceAccountName"] = "no-rights"
    e2e.apply(doc)
    run = e2e.wait_phase("refused", ("Failed", "Succeeded"), timeout=900)
    assert run["status"]["phase"] == "Failed", yaml.safe_dump(run["status"])
    pods = _evaluator_pods(e2e, "refused")
    assert pods
    for pod in pods:
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 2, term  # bad input: the podFailurePolicy fails the Job at once
        assert "the summary was not published" in term["message"] and "forbidden" in term["message"], term
    # the operator made the summary ConfigMaps empty before the Jobs; none received a summary
    summaries = e2e.kubectl.json("get", "configmaps", "-l", "benchcal.dev/run=refused")["items"]
    assert summaries and not any((cm.get("data") or {}).get("summary.json") for cm in summaries)
