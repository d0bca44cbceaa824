"""The Helm chart in several configurations: helm lint, every rendered object against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields fail), the values schema,
the operator Deployment, metrics and NOTES. RBAC is in test_chart_rbac.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")
kv = pytest.importorskip("kubernetes_validate")

from tests.charts.rendering import (  # noqa: E402  (after the importorskip guards)
    CHART,
    CONFIGS,
    CRD_NAME,
    NAMESPACE,
    RELEASE,
    REPO_ROOT,
    by_kind,
    container_env,
    deployment,
    objects,
    render,
)

# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.29.0", kv.latest_version())
CONTRACT_ENV = {
    "BENCHCAL_NAMESPACES",
    "BENCHCAL_EVALUATOR_IMAGE",
    "BENCHCAL_REDUCER_IMAGE",
    "BENCHCAL_MAX_RUNNING_CHECKPOINTS",
    "BENCHCAL_ALLOW_TRUST_REMOTE_CODE",
    "BENCHCAL_JOB_POD_SECURITY_CONTEXT",
    "BENCHCAL_STALL_CHECK_SECONDS",
    "BENCHCAL_UNSCHEDULABLE_SECONDS",
    "BENCHCAL_METRICS_PORT",
}


# ---- lint, schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["defaults", "namespaced"])
def test_helm_lint_strict_is_clean(name: str) -> None:
    report = helm.lint(str(CHART), copy.deepcopy(CONFIGS[name]), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("name", CONFIGS)
def test_every_rendered_object_matches_the_kubernetes_schemas(rendered, name: str) -> None:
    objs = rendered[name]
    assert objs
    for obj in objs:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # not a Kubernetes API type; checked in test_servicemonitor_selects_the_metrics_service
        for version in KUBE_VERSIONS:
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as exc:
                where = f"{name}: {obj['kind']}/{obj['metadata']['name']} (Kubernetes {version})"
                pytest.fail(f"{where} at {list(exc.path)}: {exc.message[:300]}")


def test_chart_crd_is_a_byte_identical_copy_and_a_valid_crd() -> None:
    source = REPO_ROOT / "crds" / CRD_NAME
    copied = CHART / "crds" / CRD_NAME
    assert copied.read_bytes() == source.read_bytes(), (
        "charts/benchcal/crds/ is a generated copy of crds/: run make crds"
    )
    assert [p.name for p in (CHART / "crds").iterdir()] == [CRD_NAME]
    kv.validate(yaml.safe_load(copied.read_text()), kv.latest_version(), strict=True)


@pytest.mark.parametrize(
    "values, key",
    [
        ({"imagee": {"tag": "x"}}, "imagee"),
        ({"image": {"tagg": "x"}}, "tagg"),
        ({"rbac": {"clusterScope": False}}, "clusterScope"),
        ({"metrics": {"serviceMonitor": {"enable": True}}}, "enable"),
        ({"securityContext": {"readOnlyRootFS": True}}, "readOnlyRootFS"),
    ],
)
def test_values_schema_rejects_unknown_keys(values: dict[str, Any], key: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=key):
        render(values)


def test_values_schema_rejects_a_bad_digest() -> None:
    with pytest.raises(helm.HelmValuesError, match="digest"):
        render({"image": {"digest": "latest"}})


def test_every_schema_object_forbids_additional_properties() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    # Free-form Kubernetes maps (labels, annotations, resource quantities) are typed maps; every
    # other object lists its properties and rejects the rest.
    open_objects: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if (
            node.get("type") == "object"
            and "properties" in node
            and node.get("additionalProperties") is not False
        ):
            open_objects.append(path)
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "values")
    assert not open_objects


def test_every_default_value_is_documented() -> None:
    """values.yaml is the manual: each key has a comment right above it, unless it sits inside a
    value documented as a whole (a `# --` comment above an ancestor, e.g. resources)."""
    undocumented = []
    ancestors: list[tuple[int, bool]] = []  # (indent, documented as a whole) of enclosing keys
    comment = ""  # first line of the comment block right above the current line, if any
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = comment or stripped
            continue
        if stripped and not stripped.startswith("- ") and ":" in stripped:
            indent = len(line) - len(line.lstrip())
            ancestors = [a for a in ancestors if a[0] < indent]
            if not comment and not any(whole for _, whole in ancestors):
                undocumented.append(stripped)
            ancestors.append((indent, comment.startswith("# --")))
        comment = ""
    assert not undocumented, undocumented


# ---- the operator Deployment --------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_operator_deployment_is_single_replica_restricted_and_probed(rendered, name: str) -> None:
    dep = deployment(rendered[name])
    spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    (ctr,) = pod["containers"]
    assert ctr["args"][:5] == [
        "benchcal",
        "operator",
        "--standalone",
        "--liveness",
        "http://0.0.0.0:8081/healthz",
    ]
    assert "command" not in ctr  # keeps the image entrypoint (tini) as PID 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = ctr["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    probe = ctr["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert {p["name"]: p["containerPort"] for p in ctr["ports"]}[probe["port"]] == 8081
    assert "readinessProbe" not in ctr
    assert set(container_env(rendered[name])) >= CONTRACT_ENV
    assert pod["serviceAccountName"] == f"{RELEASE}-benchcal"


def test_rendered_env_is_understood_by_the_operator_settings(rendered) -> None:
    settings = pytest.importorskip("benchcal_operator.settings")
    for name in CONFIGS:
        env = {k: v for k, v in container_env(rendered[name]).items() if isinstance(v, str)}
        s = settings.from_env(env)
        assert s.evaluator_image == env["BENCHCAL_EVALUATOR_IMAGE"]
        assert s.reducer_image == env["BENCHCAL_REDUCER_IMAGE"]
        assert s.metrics_port == (0 if name == "metrics-off" else 8080)


def test_custom_images_digests_and_pull_secrets(rendered) -> None:
    objs = rendered["custom-images"]
    pod = deployment(objs)["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example/ops/benchcal-operator@sha256:" + "a" * 64
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    env = container_env(objs)
    assert env["BENCHCAL_EVALUATOR_IMAGE"] == "registry.example/ml/evaluator:9.9.9-cu128"
    assert (
        env["BENCHCAL_REDUCER_IMAGE"] == env["BENCHCAL_EVALUATOR_IMAGE"]
    )  # empty reducer repo: evaluator image
    assert env["EXTRA"] == "1" and pod["containers"][0]["args"][-1] == "--verbose"
    defaults = container_env(rendered["defaults"])
    assert defaults["BENCHCAL_EVALUATOR_IMAGE"] == "ghcr.io/benchcal/evaluator:0.1.0"
    assert defaults["BENCHCAL_REDUCER_IMAGE"] == "ghcr.io/benchcal/reducer:0.1.0"


# ---- metrics ------------------------------------------------------------------------------


def test_metrics_off_removes_service_port_and_server(rendered) -> None:
    objs = rendered["metrics-off"]
    assert not by_kind(objs, "Service") and not by_kind(objs, "ServiceMonitor")
    ports = [p["name"] for p in deployment(objs)["spec"]["template"]["spec"]["containers"][0]["ports"]]
    assert ports == ["healthz"]
    assert container_env(objs)["BENCHCAL_METRICS_PORT"] == "0"


def test_servicemonitor_selects_the_metrics_service(rendered) -> None:
    objs = rendered["servicemonitor"]
    (svc,), (mon,) = by_kind(objs, "Service"), by_kind(objs, "ServiceMonitor")
    assert mon["apiVersion"] == "monitoring.coreos.com/v1"
    assert mon["metadata"]["labels"]["release"] == "prom"
    assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert mon["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [e["port"] for e in mon["spec"]["endpoints"]] == [p["name"] for p in svc["spec"]["ports"]]
    pod_labels = deployment(objs)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert not by_kind(rendered["defaults"], "ServiceMonitor")


def test_servicemonitor_without_metrics_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"metrics\.enabled"):
        render({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}})


def test_notes_show_the_first_calibrationrun() -> None:
    notes = render({"watchNamespaces": ["ml-evals"], "rbac": {"clusterScoped": False}})[
        "benchcal/templates/NOTES.txt"
    ]
    assert "kubectl apply -n ml-evals -f -" in notes
    manifest = notes.split("-f -\n", 1)[1].split("   YAML", 1)[0]
    run = yaml.safe_load("\n".join(line[3:] for line in manifest.splitlines()))
    assert run["kind"] == "CalibrationRun" and len(run["spec"]["checkpoints"]) >= 3
    spec = pytest.importorskip("benchcal.spec")
    assert spec.parse_run(run).name == "tiny-demo"  # valid against the CRD and the task registry


def _job_security_settings(values: dict[str, Any]) -> Any:
    settings = pytest.importorskip("benchcal_operator.settings")
    env = container_env(objects(render(values)))
    return settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})


def test_job_pod_security_context_defaults_to_the_images_uid_with_fs_group() -> None:
    """Item 2: uid/gid/fsGroup 65532 so root-owned results volumes are writable."""
    s = _job_security_settings({})
    assert s.job_pod_security_context == {
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch",
    }


def test_job_pod_security_context_can_be_left_to_openshift() -> None:
    """Item 2: OpenShift's restricted-v2 assigns the ids itself; null removes them (documented)."""
    ids = {"runAsUser": None, "runAsGroup": None, "fsGroup": None}
    s = _job_security_settings({"jobPodSecurityContext": ids})
    assert s.job_pod_security_context == {"fsGroupChangePolicy": "OnRootMismatch"}
    s = _job_security_settings({"jobPodSecurityContext": {"fsGroup": 1000700000}})
    assert s.job_pod_security_context["fsGroup"] == 1000700000


def test_job_pod_security_context_values_are_checked() -> None:
    with pytest.raises(Exception, match="runAsUser"):
        render({"jobPodSecurityContext": {"runAsUser": 0}})
    with pytest.raises(Exception, match="privileged"):
        render({"jobPodSecurityContext": {"privileged": True}})
