"""The kubelet's rules (tests/kube/podrules.py), podman arguments and volume ownership, without podman."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.kube import podman, podrules, volumes
from tests.kube.podrules import ConfigError


def _pod(psc: dict | None = None, csc: dict | None = None, **container) -> tuple[dict, dict]:
    c = {"name": "main", "image": "img", "securityContext": csc or {}, **container}
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
        "spec": {"securityContext": psc or {}, "containers": [c]},
    }
    return pod, c


def test_container_security_context_overrides_the_pods() -> None:
    pod, c = _pod({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "supplementalGroups": [3000], "runAsNonRoot": True},
                  {"runAsUser": 65532, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False})  # fmt: skip
    sec = podrules.effective_security(pod, c)
    assert (sec.user, sec.group, sec.groups, sec.non_root) == (65532, 1000, (2000, 3000), True)
    assert sec.read_only_root and sec.no_new_privileges and sec.seccomp == "Unconfined"
    assert "NET_RAW" in sec.capabilities and "SYS_ADMIN" not in sec.capabilities
    assert podrules.capabilities({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}) == (
        "NET_BIND_SERVICE",
    )


@pytest.mark.parametrize(
    ("psc", "image_user", "message"),
    [
        ({"runAsNonRoot": True}, "", "image will run as root"),
        ({"runAsNonRoot": True}, "0:0", "image will run as root"),
        (
            {"runAsNonRoot": True},
            "nobody",
            "image has non-numeric user (nobody), cannot verify user is non-root",
        ),
        ({"runAsNonRoot": True, "runAsUser": 0}, "65532", "container's runAsUser breaks non-root policy"),
        ({"runAsNonRoot": True}, "65532:65532", None),
        ({"runAsNonRoot": True, "runAsUser": 65532}, "", None),
        ({}, "", None),
    ],
)
def test_run_as_non_root_is_checked_against_the_image_user(psc, image_user, message) -> None:
    pod, c = _pod(psc)
    sec = podrules.effective_security(pod, c)
    if message is None:
        podrules.verify_run_as_non_root(pod, c, sec, image_user)
        return
    with pytest.raises(ConfigError) as err:
        podrules.verify_run_as_non_root(pod, c, sec, image_user)
    assert err.value.reason == "CreateContainerConfigError"
    assert message in err.value.message and '(pod: "p_ns(u-1)", container: main)' in err.value.message


def test_command_and_args_against_entrypoint_and_cmd() -> None:
    ep, cmd = ["/usr/bin/tini", "--"], ["benchcal", "reduce", "--help"]
    assert podrules.argv({}, ep, cmd) == [*ep, *cmd]
    assert podrules.argv({"args": ["benchcal", "evaluate"]}, ep, cmd) == [*ep, "benchcal", "evaluate"]
    assert podrules.argv({"command": ["sh"]}, ep, cmd) == ["sh"]  # command drops CMD too
    assert podrules.argv({"command": ["sh"], "args": ["-c", "x"]}, ep, cmd) == ["sh", "-c", "x"]


def test_quantities_and_pull_decisions() -> None:
    assert podrules.parse_quantity("4Gi") == 4 * 2**30 and podrules.parse_quantity("500m") == 0.5
    assert podrules.parse_quantity("1G") == 10**9 and podrules.parse_quantity(2) == 2
    assert podrules.pull_decision("i", "IfNotPresent", True, 0) is None
    assert podrules.pull_decision("i", "Never", False, 0).reason == "ErrImageNeverPull"
    assert [podrules.pull_decision("i", "IfNotPresent", False, n).reason for n in (0, 1, 2)] == [
        "ErrImagePull", "ImagePullBackOff", "ImagePullBackOff",
    ]  # fmt: skip
    assert podrules.pull_decision("i:latest", "Always", True, 0).reason == "ErrImagePull"  # no registry
    pod, _ = _pod(terminationGracePeriodSeconds=5)
    pod["spec"]["terminationGracePeriodSeconds"] = 5
    pod["metadata"]["deletionGracePeriodSeconds"] = 30
    assert podrules.grace_seconds(pod) == 5


def test_podman_arguments_for_a_hardened_container(tmp_path: Path) -> None:
    pod, c = _pod({"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                  {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}})  # fmt: skip
    sec = podrules.effective_security(pod, c)
    args = podman.run_args(
        name="n", image="img", argv=["/usr/bin/tini", "--", "benchcal"], env={"A": "1"},
        mounts=[podman.Mount(tmp_path, "/tmp"), podman.Mount(tmp_path, "/cfg", read_only=True), podman.Mount(tmp_path, "/dev/shm", tmpfs=True)],
        sec=sec, image_user="65532:65532", hostname="h", log_path=tmp_path / "log", owner="o",
        seccomp_profile=tmp_path / "rd.json", memory=2**30,
    )  # fmt: skip
    joined = " ".join(args)
    for part in (
        "--pull=never", "--ulimit nofile=1024:1024", "--ulimit nproc=4096:4096", "--network=host",
        "--user 65532:65532", "--group-add 65532", "--read-only --read-only-tmpfs=false",
        "--cap-drop=all", "--security-opt no-new-privileges", f"--security-opt seccomp={tmp_path}/rd.json",
        f"--memory={2**30} --memory-swap={2**30}", f"type=bind,source={tmp_path},destination=/cfg,ro=true",
        "--tmpfs /dev/shm:rw,exec,nosuid,nodev,mode=0777", "--env A=1",
    ):  # fmt: skip
        assert part in joined, part
    assert "--cap-add" not in joined
    assert args[-3:] == ["--entrypoint", json.dumps(["/usr/bin/tini", "--", "benchcal"]), "img"]


def test_runtime_default_seccomp_gates_namespaces_behind_sys_admin() -> None:
    base = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["read", "unshare", "clone", "clone3", "mount", "setns"], "action": "SCMP_ACT_ALLOW", "includes": {}, "excludes": {}, "args": []},
    ]}  # fmt: skip
    profile = podman.runtime_default_profile(base)
    assert profile["syscalls"][0]["names"] == ["read"] and profile["defaultErrnoRet"] == 1
    gated = next(r for r in profile["syscalls"] if r.get("includes", {}).get("caps") == ["CAP_SYS_ADMIN"])
    assert {"unshare", "clone", "clone3", "mount", "setns"} <= set(gated["names"])
    clone = next(r for r in profile["syscalls"] if r["names"] == ["clone"])
    assert (
        clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["value"] & 0x10000000
    )  # CLONE_NEWUSER


def test_fs_group_ownership_follows_the_kubelet(tmp_path: Path) -> None:
    root = volumes.new_claim_dir(tmp_path / "claim")
    (root / "old.txt").write_text("x")
    os.chmod(root / "old.txt", 0o600)
    assert oct(root.stat().st_mode & 0o7777) == "0o755" and (root / "lost+found").is_dir()
    volumes.set_volume_ownership(root, 4321, "OnRootMismatch", read_only=False)
    assert root.stat().st_gid == 4321 and root.stat().st_mode & 0o7777 == 0o2775
    assert (root / "old.txt").stat().st_gid == 4321 and (root / "old.txt").stat().st_mode & 0o777 == 0o660
    os.chmod(root / "old.txt", 0o600)  # root matches now: OnRootMismatch leaves the tree alone
    volumes.set_volume_ownership(root, 4321, "OnRootMismatch", read_only=False)
    assert (root / "old.txt").stat().st_mode & 0o777 == 0o600
    volumes.set_volume_ownership(root, 4321, "Always", read_only=False)
    assert (root / "old.txt").stat().st_mode & 0o777 == 0o660
