"""Authentication and RBAC of the local server, checked against the real server's behaviour.

Raw HTTP (tests/kube/rest.py) for exact codes and Status bodies; the real kubectl where a user
would use it (``auth can-i``, ``--as``, ``create token``, a ServiceAccount's kubeconfig).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube.apiserver import LocalApiServer
from tests.kube.fixtures import Kubectl, kubectl_available
from tests.kube.rest import Rest

NS = "/api/v1/namespaces/default"
CM = f"{NS}/configmaps"
needs_kubectl = pytest.mark.skipif(not kubectl_available(), reason="kubectl is not on PATH")


def _sa(server: LocalApiServer, name: str, namespace: str = "default") -> str:
    code, body = Rest.admin(server).post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
    )
    assert code == 201, body
    return server.token_for(namespace, name)


def _role(server: LocalApiServer, name: str, rules: list[dict], namespace: str = "default") -> None:
    rest = Rest.admin(server)
    code, body = rest.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {"metadata": {"name": name}, "rules": rules},
    )
    assert code == 201, body


def _bind(
    server: LocalApiServer,
    name: str,
    role: str,
    subject: dict,
    kind: str = "Role",
    namespace: str = "default",
) -> None:
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [subject],
    }
    code, out = Rest.admin(server).post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", body
    )
    assert code == 201, out


def test_no_token_or_a_bad_token_is_401_with_the_real_status(kube_server: LocalApiServer) -> None:
    unauthorized = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert Rest.as_token(kube_server, None).get(CM) == (401, unauthorized)
    assert Rest.as_token(kube_server, "not-a-token").get("/version") == (401, unauthorized)
    forged = kube_server.token_for("default", "default")[:-4] + "AAAA"  # a tampered signature
    assert Rest.as_token(kube_server, forged).get(CM)[0] == 401


def test_anonymous_mode_is_system_anonymous_and_may_read_version_only(tmp_path: Path) -> None:
    with LocalApiServer(log_dir=tmp_path / "logs", anonymous=True) as server:
        anon = Rest.as_token(server, None)
        assert anon.get("/version")[0] == 200  # system:public-info-viewer
        code, err = anon.get(CM)
        assert code == 403 and err["message"] == (
            'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" '
            'in API group "" in the namespace "default"'
        )


def test_missing_verb_is_the_real_403_and_a_rolebinding_grants_it(kube_server: LocalApiServer) -> None:
    token = _sa(kube_server, "reader")
    rest = Rest.as_token(kube_server, token)
    code, err = rest.get(f"{CM}/kube-root-ca.crt")
    assert code == 403
    assert err == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "kube-root-ca.crt" is forbidden: User "system:serviceaccount:default:reader" '
        'cannot get resource "configmaps" in API group "" in the namespace "default"',
        "reason": "Forbidden",
        "details": {"name": "kube-root-ca.crt", "kind": "configmaps"},
        "code": 403,
    }
    # a grouped, cluster-scoped resource: the qualified resource and "at the cluster scope"
    code, err = rest.get("/apis/batch/v1/jobs")
    assert code == 403 and err["details"] == {"group": "batch", "kind": "jobs"}
    assert err["message"] == (
        'jobs.batch is forbidden: User "system:serviceaccount:default:reader" cannot list resource '
        '"jobs" in API group "batch" at the cluster scope'
    )
    _role(
        kube_server, "cm-read", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    )
    _bind(
        kube_server,
        "reader-cm",
        "cm-read",
        {"kind": "ServiceAccount", "name": "reader", "namespace": "default"},
    )
    assert rest.get(f"{CM}/kube-root-ca.crt")[0] == 200
    assert rest.get(CM)[0] == 200
    # get and list, not watch, and nothing in another namespace
    code, err = rest.get(f"{CM}?watch=true&timeoutSeconds=1")
    assert code == 403 and "cannot watch resource" in err["message"]
    code, err = rest.get("/api/v1/namespaces/kube-public/configmaps")
    assert code == 403 and 'in the namespace "kube-public"' in err["message"]
    # the binding's subject is this ServiceAccount only: another one in the namespace is refused
    assert Rest.as_token(kube_server, kube_server.token_for("default", "default")).get(CM)[0] == 403


def test_resource_names_restrict_get_and_never_allow_list_or_create(kube_server: LocalApiServer) -> None:
    admin = Rest.admin(kube_server)
    for name in ("mine", "other"):
        assert admin.post(CM, {"metadata": {"name": name}})[0] == 201
    token = _sa(kube_server, "narrow")
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["mine"],
            "verbs": ["get", "update", "list", "create"],
        }
    ]
    _role(kube_server, "only-mine", rules)
    _bind(kube_server, "narrow", "only-mine", {"kind": "ServiceAccount", "name": "narrow"})
    rest = Rest.as_token(kube_server, token)
    assert rest.get(f"{CM}/mine")[0] == 200
    code, err = rest.get(f"{CM}/other")
    assert code == 403 and err["message"].startswith('configmaps "other" is forbidden')
    assert rest.get(CM)[0] == 403  # a list has no name
    assert rest.get(f"{CM}?fieldSelector=metadata.name%3Dmine")[0] == 200  # ...unless it names one
    assert rest.post(CM, {"metadata": {"name": "mine-2"}})[0] == 403  # neither has a create


def test_subresources_are_authorized_separately(kube_server: LocalApiServer) -> None:
    token = _sa(kube_server, "logs")
    rest = Rest.as_token(kube_server, token)
    _role(kube_server, "pods", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    _bind(kube_server, "logs", "pods", {"kind": "ServiceAccount", "name": "logs"})
    code, err = rest.get(f"{NS}/pods/p/log")
    assert code == 403 and 'cannot get resource "pods/log" in API group ""' in err["message"]
    _role(kube_server, "pod-logs", [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}])
    _bind(kube_server, "logs-2", "pod-logs", {"kind": "ServiceAccount", "name": "logs"})
    assert rest.get(f"{NS}/pods/p/log")[0] == 404  # authorized now; the pod does not exist


def test_binding_to_a_missing_role_says_so_in_the_403(kube_server: LocalApiServer) -> None:
    token = _sa(kube_server, "orphan")
    _bind(kube_server, "dangling", "no-such-role", {"kind": "ServiceAccount", "name": "orphan"})
    code, err = Rest.as_token(kube_server, token).get(CM)
    assert code == 403 and err["message"].endswith(
        ': RBAC: role.rbac.authorization.k8s.io "no-such-role" not found'
    )


def test_aggregated_cluster_role_picks_up_labelled_roles(kube_server: LocalApiServer) -> None:
    admin = Rest.admin(kube_server)
    alice = Rest.as_token(kube_server, kube_server.add_user("alice"))
    _bind(kube_server, "alice-edit", "edit", {"kind": "User", "name": "alice"}, kind="ClusterRole")
    assert alice.post(CM, {"metadata": {"name": "by-alice"}})[0] == 201  # edit, from system:aggregate-to-edit
    assert alice.get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles")[0] == 403  # admin only
    widgets = "/apis/example.com/v1/namespaces/default/widgets"
    assert alice.get(widgets)[0] == 403
    editor = {
        "metadata": {
            "name": "widget-editor",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
        },
        "rules": [
            {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "create"]}
        ],
    }
    assert admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", editor)[0] == 201
    _, edit = admin.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/edit")
    assert editor["rules"][0] in edit["rules"]
    assert alice.get(widgets)[0] == 404  # authorized; the type is not served
    assert admin.delete("/apis/rbac.authorization.k8s.io/v1/clusterroles/widget-editor")[0] == 200
    assert alice.get(widgets)[0] == 403


def test_service_account_tokens_die_with_their_account(kube_server: LocalApiServer) -> None:
    token = _sa(kube_server, "short-lived")
    rest = Rest.as_token(kube_server, token)
    assert rest.get("/version")[0] == 200
    assert Rest.admin(kube_server).delete(f"{NS}/serviceaccounts/short-lived")[0] == 200
    assert rest.get("/version")[0] == 401
    _sa(kube_server, "short-lived")  # same name, new uid: the old token stays invalid
    assert rest.get("/version")[0] == 401


def test_discovery_is_open_to_every_authenticated_user(kube_server: LocalApiServer) -> None:
    rest = Rest.as_token(kube_server, kube_server.token_for("default", "default"))
    for path in ("/api", "/apis", "/api/v1", "/apis/batch/v1", "/version", "/openapi/v3"):
        assert rest.get(path)[0] == 200, path
    code, err = rest.get("/metrics")
    assert (
        code == 403
        and err["message"]
        == 'forbidden: User "system:serviceaccount:default:default" cannot get path "/metrics"'
    )


@needs_kubectl
def test_kubectl_as_admin_and_as_a_service_account(
    kube_server: LocalApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bot}\n")
    assert (
        kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == "kubernetes-admin"
    )
    # impersonation, as a user checks what a ServiceAccount may do
    sa = "system:serviceaccount:default:bot"
    no = kubectl("auth", "can-i", "list", "configmaps", f"--as={sa}", check=False)
    assert no.returncode == 1 and no.stdout.strip() == "no"
    kubectl(
        "apply",
        "-f",
        "-",
        input="""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bot-cm}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm}
subjects: [{kind: ServiceAccount, name: bot, namespace: default}]
""",
    )
    assert kubectl("auth", "can-i", "list", "configmaps", f"--as={sa}").stdout.strip() == "yes"
    # the ServiceAccount's own token, from `kubectl create token`, in its own kubeconfig
    token = kubectl("create", "token", "bot").stdout.strip()
    bot = Kubectl(kube_server.kubeconfig(tmp_path / "bot.kubeconfig", token))
    assert "kube-root-ca.crt" in bot("get", "configmaps").stdout
    denied = bot("get", "pods", check=False)
    assert (
        denied.returncode != 0
        and (
            'pods is forbidden: User "system:serviceaccount:default:bot" cannot list resource "pods" '
            'in API group "" in the namespace "default"'
        )
        in denied.stderr
    )
    # a ServiceAccount cannot impersonate anyone
    bad = bot("get", "configmaps", "--as=kubernetes-admin", check=False)
    assert bad.returncode != 0 and 'cannot impersonate resource "users"' in bad.stderr


RBAC_NS = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"


def test_roles_and_bindings_cannot_grant_what_their_author_does_not_hold(kube_server: LocalApiServer) -> None:
    """RBAC escalation prevention (pkg/registry/rbac): the real 403 body, and the two ways out
    (holding the rules, or the escalate/bind verbs)."""
    token = _sa(kube_server, "granter")
    _role(
        kube_server,
        "granter",
        [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["roles", "rolebindings"],
                "verbs": ["create"],
            },
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ],
    )
    _bind(
        kube_server,
        "granter",
        "granter",
        {"kind": "ServiceAccount", "name": "granter", "namespace": "default"},
    )
    rest = Rest.as_token(kube_server, token)
    held = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get"]}
    code, body = rest.post(f"{RBAC_NS}/roles", {"metadata": {"name": "narrow"}, "rules": [held]})
    assert code == 201, body  # a named get is covered by the unnamed one
    not_held = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}
    code, body = rest.post(f"{RBAC_NS}/roles", {"metadata": {"name": "wider"}, "rules": [not_held]})
    assert code == 403 and body["reason"] == "Forbidden", body
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "wider" is forbidden: user "system:serviceaccount:default:granter" '
        '(groups=["system:serviceaccounts" "system:serviceaccounts:default" "system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["configmaps"], Verbs:["patch"]}'
    )
    _role(kube_server, "wider", [not_held])  # the admin may
    subject = {"kind": "ServiceAccount", "name": "default", "namespace": "default"}

    def binding(name: str, role: str) -> dict:
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
        return {"metadata": {"name": name}, "roleRef": ref, "subjects": [subject]}

    assert rest.post(f"{RBAC_NS}/rolebindings", binding("to-narrow", "narrow"))[0] == 201
    code, body = rest.post(f"{RBAC_NS}/rolebindings", binding("to-wider", "wider"))
    assert code == 403 and "attempting to grant RBAC permissions not currently held" in body["message"], body
    assert body["message"].startswith('rolebindings.rbac.authorization.k8s.io "to-wider" is forbidden: ')
    _role(
        kube_server,
        "binder",
        [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["roles"],
                "resourceNames": ["wider"],
                "verbs": ["bind"],
            }
        ],
    )
    _bind(
        kube_server, "binder", "binder", {"kind": "ServiceAccount", "name": "granter", "namespace": "default"}
    )
    assert rest.post(f"{RBAC_NS}/rolebindings", binding("to-wider", "wider"))[0] == 201  # may bind it
