"""The Pod Security checks as pure functions: upstream wording for the cases the product can meet."""

from __future__ import annotations

import pytest

from tests.kube.apiserver import podsecurity

OK_CONTAINER = {
    "name": "c",
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}
OK_POD = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}


def _spec(pod: dict | None = None, **container: object) -> dict:
    c = {**OK_CONTAINER, **container}
    return {**OK_POD, **(pod or {}), "containers": [c]}


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        (_spec(), ""),
        (
            _spec({"securityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}}),
            "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
        ),
        (
            _spec(
                {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 0,
                        "seccompProfile": {"type": "Localhost"},
                    }
                }
            ),
            "runAsUser=0 (pod must not set runAsUser=0)",
        ),
        (
            _spec({"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}}),
            'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
        ),
        (
            _spec(
                securityContext={
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]},
                }
            ),
            'unrestricted capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)',
        ),
        (
            {
                **_spec(),
                "volumes": [
                    {"name": "a", "hostPath": {"path": "/"}},
                    {"name": "b", "nfs": {"server": "x", "path": "/"}},
                ],
            },
            'restricted volume types (volumes "a", "b" use restricted volume types "hostPath", "nfs")',
        ),
        (
            {
                **_spec(),
                "volumes": [
                    {"name": n, k: {}}
                    for n, k in (("e", "emptyDir"), ("p", "projected"), ("s", "secret"), ("c", "configMap"))
                ],
            },
            "",
        ),
    ],
)
def test_restricted_checks(spec: dict, detail: str) -> None:
    assert podsecurity.evaluate("restricted", {}, spec) == detail


def test_baseline_ignores_restricted_only_fields_but_not_host_access() -> None:
    spec = {
        "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
        "hostPID": True,
    }
    assert podsecurity.evaluate("baseline", {}, spec) == (
        'host namespaces (hostPID=true), hostPort (container "c" uses hostPort 8080)'
    )
    assert podsecurity.evaluate("baseline", {}, {"containers": [{"name": "c"}]}) == ""
    assert podsecurity.evaluate("privileged", {}, spec) == ""


def test_warn_defaults_to_a_stricter_enforce_level() -> None:
    modes, errors = podsecurity.policy({"pod-security.kubernetes.io/enforce": "baseline"})
    assert (
        errors == []
        and modes["enforce"] == ("baseline", "latest")
        and modes["warn"] == ("baseline", "latest")
    )
    modes, _ = podsecurity.policy(
        {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"}
    )
    assert modes["warn"] == ("restricted", "latest")
    modes, errors = podsecurity.policy({"pod-security.kubernetes.io/enforce": "bogus"})
    assert modes["enforce"][0] == "restricted" and errors  # an invalid enforce level fails closed
