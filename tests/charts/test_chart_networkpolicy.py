"""The evaluator pods' NetworkPolicies, rendered by Helm per values, and what they select: the
operator's own pod templates (benchcal_operator.jobs) with the labels of benchcal.naming."""

from __future__ import annotations

from typing import Any

import pytest

helm = pytest.importorskip("helm_python")

from benchcal import naming  # noqa: E402  (after the importorskip guard)
from benchcal.spec import parse_run  # noqa: E402
from benchcal_operator import jobs  # noqa: E402
from benchcal_operator.settings import Settings  # noqa: E402
from tests.charts.rendering import NAMESPACE, RELEASE, by_kind, objects, render  # noqa: E402
from tests.operator.conftest import RUN_BODY  # noqa: E402

ENABLED = {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.10/32"]}}}


def _policies(values: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in by_kind(objects(render(values)), "NetworkPolicy")
    }


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) == {"matchLabels"}  # what _selects understands
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def _pod_labels() -> dict[str, dict[str, str]]:
    """Labels of the pods the operator starts for the test run: builtin, claim and hub checkpoints, reducer."""
    run = parse_run(RUN_BODY)
    settings = Settings()
    out = {c.name: jobs.build_evaluator_job(run, c, settings) for c in run.checkpoints}
    out["reducer"] = jobs.build_reducer_job(run, settings)
    return {k: job["spec"]["template"]["metadata"]["labels"] for k, job in out.items()}


def test_no_policy_unless_enabled() -> None:
    assert _policies({}) == {}


def test_enabled_needs_the_api_servers_address() -> None:
    with pytest.raises(Exception, match=r"networkPolicy.enabled=true needs networkPolicy.apiServer.cidrs"):
        render({"networkPolicy": {"enabled": True}})


def test_values_schema_checks_cidrs_and_ports() -> None:
    with pytest.raises(Exception, match="cidrs"):
        render({"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["kubernetes.default"]}}})
    with pytest.raises(Exception, match="port"):
        render(
            {**ENABLED, "networkPolicy": {**ENABLED["networkPolicy"], "apiServer": {"cidrs": [], "port": 0}}}
        )


def test_evaluators_get_dns_and_the_api_server_and_no_ingress() -> None:
    policies = _policies({"networkPolicy": {**ENABLED["networkPolicy"], "namespaces": ["team-a"]}})
    name = f"{RELEASE}-benchcal-evaluator"
    # one pair per namespace: the release namespace (cluster mode) and networkPolicy.namespaces
    assert set(policies) == {(ns, n) for ns in (NAMESPACE, "team-a") for n in (name, f"{name}-external")}
    spec = policies[(NAMESPACE, name)]["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec  # no ingress at all
    dns, api = spec["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert api == {
        "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}],
        "ports": [{"protocol": "TCP", "port": 6443}],
    }


def test_external_egress_excludes_the_instance_metadata_endpoint_by_default() -> None:
    (external,) = [p for (_, n), p in _policies(ENABLED).items() if n.endswith("-external")]
    assert external["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}
    ]


def test_only_pods_that_leave_the_cluster_get_https_out() -> None:
    policies = _policies(
        {
            **ENABLED,
            "networkPolicy": {**ENABLED["networkPolicy"], "externalEgress": {"except": ["10.0.0.0/8"]}},
        }
    )
    base = policies[(NAMESPACE, f"{RELEASE}-benchcal-evaluator")]
    external = policies[(NAMESPACE, f"{RELEASE}-benchcal-evaluator-external")]
    assert external["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
            "ports": [{"protocol": "TCP", "port": 443}],
        }
    ]
    labels = _pod_labels()  # s1: builtin, s2: claim, s3: hub
    assert {k for k, lab in labels.items() if _selects(base, lab)} == {"s1", "s2", "s3"}
    assert {k for k, lab in labels.items() if _selects(external, lab)} == {"s3"}
    # the label the policy selects on is the one vocabulary in benchcal.naming
    assert external["spec"]["podSelector"]["matchLabels"][naming.EXTERNAL_EGRESS_LABEL] == "true"
    assert base["spec"]["podSelector"]["matchLabels"][naming.COMPONENT_LABEL] == naming.EVALUATOR


def test_the_kube_version_floor_has_native_sidecars() -> None:
    """Evaluator pods carry the publisher as an init container with restartPolicy Always: an API
    server before 1.29 (SidecarContainers off) drops the field and the pod waits forever."""
    import yaml

    from tests.charts.rendering import CHART

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.29.0-0"
    run = parse_run(RUN_BODY)
    pod = jobs.build_evaluator_job(run, run.checkpoints[0], Settings())["spec"]["template"]["spec"]
    assert [c.get("restartPolicy") for c in pod["initContainers"]] == ["Always"]
