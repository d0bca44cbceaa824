"""Pure builders of what a run needs in its namespace before its Jobs start (plain dicts).

Every object is owned by the run (controller ownerReference), so it is garbage-collected with it,
and named deterministically (``benchcal.naming``), so a restarted operator finds it again:

- a **ServiceAccount** ``<run>-benchcal`` (token automount off): the identity of the run's
  publisher sidecars and reducer; the run works in any watched namespace with no manual step;
- a **Role** with exactly what those two call, by name: ``get``/``patch`` on this run's summary
  ConfigMaps, ``get`` on this CalibrationRun and ``patch`` on its status — RBAC cannot scope
  ``create`` by name, which is why the operator creates the ConfigMaps itself;
- a **RoleBinding** of that Role to the run's ServiceAccount (and to
  ``spec.evaluator.serviceAccountName`` when the run names its own);
- per checkpoint, created with its Job, the empty summary **ConfigMaps** its publishers fill in:
  ``<run>-summary-<checkpoint>`` (annotated with the Job's shard count) and, for an Indexed Job,
  one ``…-<index>`` per shard; the Role names every name a checkpoint could ever use (up to
  ``naming.MAX_SHARDS`` shards), so editing ``spec.evaluator.shards`` needs no Role update;
- **NetworkPolicies**: the run's pods take no ingress and reach only DNS and the API server;
  pods labelled online (hub models, object storage) also reach the configured ports anywhere
  except the cloud metadata address.

The operator may grant only what it holds itself (RBAC escalation prevention), so its own rules
include the Role's (charts/benchcal/templates/_rbac_rules.tpl).
"""

from __future__ import annotations

from typing import Any

from benchcal import naming
from benchcal.api import GROUP, PLURAL
from benchcal.spec import CalibrationRun, Checkpoint
from benchcal_operator.jobs import owner_reference
from benchcal_operator.settings import Settings

RBAC_GROUP = "rbac.authorization.k8s.io"


def _meta(
    run: CalibrationRun, name: str, component: str = naming.ACCESS, checkpoint: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": run.namespace,
        "labels": naming.child_labels(run.name, component, checkpoint),
        "ownerReferences": [owner_reference(run)],
    }


def possible_summary_names(run: CalibrationRun) -> list[str]:
    """Every summary ConfigMap name the run's checkpoints could use, whatever their shard count."""
    names = []
    for ckpt in run.checkpoints:
        base = naming.summary_configmap_name(run.name, ckpt.name)
        names += [base, *naming.summary_configmap_names(run.name, ckpt.name, naming.MAX_SHARDS)]
    return names


def service_account(run: CalibrationRun) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(run, naming.run_identity_name(run.name)),
        "automountServiceAccountToken": False,  # pods ask explicitly (publisher volume, reducer)
    }


def role_rules(run: CalibrationRun) -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": possible_summary_names(run),
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [run.name], "verbs": ["get"]},
        {
            "apiGroups": [GROUP],
            "resources": [f"{PLURAL}/status"],
            "resourceNames": [run.name],
            "verbs": ["patch"],
        },
    ]


def role(run: CalibrationRun) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _meta(run, naming.run_identity_name(run.name)),
        "rules": role_rules(run),
    }


def role_binding(run: CalibrationRun) -> dict[str, Any]:
    name = naming.run_identity_name(run.name)
    subjects = [{"kind": "ServiceAccount", "name": name, "namespace": run.namespace}]
    own = run.evaluator.service_account_name
    if own and own != name:
        subjects.append({"kind": "ServiceAccount", "name": own, "namespace": run.namespace})
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(run, name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": subjects,
    }


def summary_configmaps(run: CalibrationRun, ckpt: Checkpoint) -> list[dict[str, Any]]:
    """Empty until a publisher fills in ``summary.json``; the first names the shard count."""
    shards = run.evaluator.shards
    base = naming.summary_configmap_name(run.name, ckpt.name)
    out = []
    for name in dict.fromkeys([base, *naming.summary_configmap_names(run.name, ckpt.name, shards)]):
        meta = _meta(run, name, naming.SUMMARY, ckpt.name)
        if name == base:
            meta["annotations"] = {naming.SHARDS_ANNOTATION: str(shards)}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}})
    return out


def _ports(ports: tuple[int, ...]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def network_policies(run: CalibrationRun, settings: Settings) -> list[dict[str, Any]]:
    """Egress of the run's pods: DNS and the API server; online pods also the online ports."""
    if not settings.network_policy:
        return []
    run_pods = {naming.MANAGED_BY_LABEL: naming.MANAGED_BY, naming.RUN_LABEL: run.name}
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    api: dict[str, Any] = {"ports": _ports(settings.api_server_ports)}
    if settings.api_server_cidrs:
        api["to"] = [{"ipBlock": {"cidr": cidr}} for cidr in settings.api_server_cidrs]
    base = naming.run_identity_name(run.name)
    policies = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(run, base),
            "spec": {
                "podSelector": {"matchLabels": run_pods},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [dns, api],
            },
        }
    ]
    online = {**run_pods, naming.EGRESS_LABEL: naming.EGRESS_ONLINE}
    anywhere: dict[str, Any] = {"cidr": "0.0.0.0/0"}
    if settings.online_except:
        anywhere["except"] = list(settings.online_except)
    policies.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(run, naming.bounded_name(base, "online")),
            "spec": {
                "podSelector": {"matchLabels": online},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": anywhere}], "ports": _ports(settings.online_ports)}],
            },
        }
    )
    return policies


def run_objects(run: CalibrationRun, settings: Settings) -> list[dict[str, Any]]:
    """Everything a run needs before its first Job, in creation order (ConfigMaps come per Job)."""
    return [service_account(run), role(run), role_binding(run), *network_policies(run, settings)]
