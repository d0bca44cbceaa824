"""``benchcal publish`` (the publisher sidecar) as a real process against the local API server,
authenticated as a ServiceAccount under RBAC: it publishes, answers, refuses loudly, and flushes
on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchcal import naming, outbox
from benchcal.errors import EXIT_BAD_INPUT
from benchcal.results import CheckpointSummary, TaskResult
from tests.kube.apiserver import LocalApiServer

RBAC = "rbac.authorization.k8s.io"
TARGET = "default/tiny-summary-s1"


def _summary(acc: float) -> dict:
    result = TaskResult("arc_easy", "world_knowledge", "multiple_choice", 0, "acc", acc, 100, 0.05, 0.25)
    return CheckpointSummary("s1", {"source": "x"}, 1e15, [result], [], "", "").to_dict()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalApiServer]:
    with LocalApiServer(log_dir=tmp_path / "logs") as s:
        yield s


def _precreate(server: LocalApiServer) -> None:
    """The operator creates the run's summary ConfigMaps empty, before its Jobs (identity.py)."""
    api = server.api
    manifest = {
        "metadata": {"name": "tiny-summary-s1", "labels": naming.child_labels("tiny", naming.SUMMARY, "s1")}
    }
    api.create(api.type("", "v1", "configmaps"), "default", manifest)


def _grant_configmaps(server: LocalApiServer) -> None:
    """What a run's own Role grants its pods: get and patch of its summary ConfigMaps, by name."""
    api = server.api
    _precreate(server)
    rule = {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["tiny-summary-s1"],
        "verbs": ["get", "patch"],
    }
    api.create(api.type(RBAC, "v1", "roles"), "default", {"metadata": {"name": "pub"}, "rules": [rule]})
    binding = {
        "metadata": {"name": "pub"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pub"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    }
    api.create(api.type(RBAC, "v1", "rolebindings"), "default", binding)


def _publisher(server: LocalApiServer, tmp_path: Path, box: Path) -> subprocess.Popen:
    box.mkdir(exist_ok=True)
    kubeconfig = server.kubeconfig_for(tmp_path / "kubeconfig", "default", "default")
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PYTHONPATH")},
        "KUBECONFIG": str(kubeconfig),
        # no BENCHCAL_RUN_UID: an owner that does not exist would get the ConfigMap garbage-collected
        "BENCHCAL_RUN": "tiny", "BENCHCAL_CHECKPOINT": "s1",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "benchcal", "publish", "--outbox", str(box), "--configmap", TARGET]
    cmd += ["--retry-seconds", "0"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def _configmap(server: LocalApiServer) -> dict:
    return server.api.get(server.api.type("", "v1", "configmaps"), "default", "tiny-summary-s1")


def test_publishes_then_replaces_and_flushes_on_sigterm(server: LocalApiServer, tmp_path: Path) -> None:
    _grant_configmaps(server)
    box = tmp_path / "outbox"
    proc = _publisher(server, tmp_path, box)
    try:
        assert outbox.deliver(box, _summary(0.25), timeout=60) == f"published to ConfigMap {TARGET}"
        cm = _configmap(server)
        assert json.loads(cm["data"]["summary.json"]) == _summary(0.25)
        assert cm["metadata"]["labels"]["benchcal.dev/run"] == "tiny"
        # a newer summary (a retried pod would write one) replaces it
        outbox.deliver(box, _summary(0.5), timeout=60)
        assert json.loads(_configmap(server)["data"]["summary.json"]) == _summary(0.5)
        # written just before SIGTERM: still published before the publisher exits
        data = json.dumps(_summary(0.75), sort_keys=True, separators=(",", ":")).encode()
        outbox.write_atomic(box / outbox.SUMMARY, data)
    finally:
        code, out = _stop(proc)
    assert code == 0, out
    assert outbox.answer_for(box, outbox.digest(data)).ok, out
    assert json.loads(_configmap(server)["data"]["summary.json"]) == _summary(0.75)


def test_a_refusal_reaches_the_evaluator_with_the_servers_message(
    server: LocalApiServer, tmp_path: Path
) -> None:
    box = tmp_path / "outbox"
    _precreate(server)
    proc = _publisher(server, tmp_path, box)  # no RoleBinding: the API server answers 403
    try:
        with pytest.raises(outbox.PublishFailed) as failed:
            outbox.deliver(box, _summary(0.25), timeout=60)
    finally:
        code, out = _stop(proc)
    assert failed.value.exit_code == EXIT_BAD_INPUT
    assert (
        'configmaps "tiny-summary-s1" is forbidden: User "system:serviceaccount:default:default" cannot patch'
        in (failed.value.message)
    ), failed.value.message
    assert code == 0 and "not published" in out


def test_refuses_a_target_that_is_not_namespace_slash_name(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()
    cmd = [sys.executable, "-m", "benchcal", "publish", "--outbox", str(tmp_path / "box"), "--configmap", "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "--configmap: expected NAMESPACE/NAME, got 'x'" in proc.stderr
