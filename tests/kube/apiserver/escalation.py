"""RBAC escalation prevention on Role/ClusterRole and RoleBinding/ClusterRoleBinding writes.

As kube-apiserver's rbac registry (``pkg/registry/rbac/{role,rolebinding,...}/policybased``): a
user may create or update a Role only if it holds every rule the Role grants (in the Role's
namespace; a ClusterRole: cluster-wide) or may ``escalate`` roles; it may create or update a
binding only if it holds every rule of the referenced role (in the binding's namespace) or may
``bind`` that role. "Holds" is ``validation.Covers``: each rule, split into one verb, group,
resource and name, is matched by one of the user's rules. Refusals are the real 403: ``user "u"
(groups=["a" "b"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:…}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.kube.apiserver.authn import UserInfo
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.rbac import GROUP, Rule, rule_allows
from tests.kube.apiserver.requestinfo import RequestInfo

if TYPE_CHECKING:
    from tests.kube.apiserver.rbac import Authorizer

ROLE_KINDS = {"roles": "Role", "clusterroles": "ClusterRole"}
BINDING_KINDS = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}


def _simple_rules(rule: Rule) -> list[Rule]:
    """One rule per (verb, group, resource, name) or (verb, URL), as the real Covers splits them."""
    verbs = rule.get("verbs") or []
    if rule.get("nonResourceURLs"):
        return [{"verbs": [v], "nonResourceURLs": [u]} for v in verbs for u in rule["nonResourceURLs"]]
    names = rule.get("resourceNames") or [""]
    return [
        {"verbs": [v], "apiGroups": [g], "resources": [r], **({"resourceNames": [n]} if n else {})}
        for v in verbs
        for g in rule.get("apiGroups") or []
        for r in rule.get("resources") or []
        for n in names
    ]


def _covered(owner: list[Rule], simple: Rule) -> bool:
    if simple.get("nonResourceURLs"):
        info = RequestInfo(path=simple["nonResourceURLs"][0], verb=simple["verbs"][0])
        return any(rule_allows(info, r) for r in owner if r.get("nonResourceURLs"))
    resource, _, sub = simple["resources"][0].partition("/")
    names = simple.get("resourceNames") or []
    for r in owner:
        if r.get("nonResourceURLs"):
            continue
        if names or not (r.get("resourceNames") or []):
            info = RequestInfo(
                path="",
                verb=simple["verbs"][0],
                resource_request=True,
                api_group=simple["apiGroups"][0],
                resource=resource,
                subresource=sub,
                name=names[0] if names else "",
            )
            if _matches(info, r, simple):
                return True
    return False


def _matches(info: RequestInfo, owner: Rule, simple: Rule) -> bool:
    # a wildcard in the servant needs the wildcard in the owner (rule_allows would read "*" literally)
    for key in ("verbs", "apiGroups", "resources"):
        if simple[key][0] == "*" and "*" not in (owner.get(key) or []):
            return False
    return rule_allows(info, owner)


def uncovered(owner: list[Rule], rules: list[Rule]) -> list[Rule]:
    return [s for rule in rules for s in _simple_rules(rule) if not _covered(owner, s)]


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def _describe(rule: Rule) -> str:
    """The compact rule form of the real message."""
    if rule.get("nonResourceURLs"):
        return f"{{NonResourceURLs:{_go_list(rule['nonResourceURLs'])}, Verbs:{_go_list(rule['verbs'])}}}"
    parts = [f"APIGroups:{_go_list(rule['apiGroups'])}", f"Resources:{_go_list(rule['resources'])}"]
    if rule.get("resourceNames"):
        parts.append(f"ResourceNames:{_go_list(rule['resourceNames'])}")
    parts.append(f"Verbs:{_go_list(rule['verbs'])}")
    return "{" + ", ".join(parts) + "}"


def _may(authz: Authorizer, user: UserInfo, verb: str, plural: str, namespace: str, name: str) -> bool:
    info = RequestInfo(
        path="",
        verb=verb,
        resource_request=True,
        api_group=GROUP,
        namespace=namespace,
        resource=plural,
        name=name,
    )
    return authz.authorize(user, info)[0]


def check(
    authz: Authorizer, store: Any, user: UserInfo, plural: str, namespace: str, obj: dict[str, Any]
) -> None:
    """Raise the real 403 if writing ``obj`` (a role or binding) would escalate ``user``."""
    name = (obj.get("metadata") or {}).get("name", "")
    if plural in ROLE_KINDS:
        if _may(authz, user, "escalate", plural, namespace, name):
            return
        wanted = list(obj.get("rules") or [])
    elif plural in BINDING_KINDS:
        ref = obj.get("roleRef") or {}
        ref_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        if _may(authz, user, "bind", ref_plural, namespace, ref.get("name", "")):
            return
        key = (GROUP, ref_plural, "" if ref_plural == "clusterroles" else namespace, ref.get("name", ""))
        role = store.get(key)
        if role is None:
            return  # validation answers the missing role (the real server: NotFound on the roleRef)
        wanted = list(role.get("rules") or [])
    else:
        return
    owner, _ = authz.rules_for(user, namespace)
    missing = uncovered(owner, wanted)
    if not missing:
        return
    message = (
        f'{plural}.{GROUP} "{name}" is forbidden: user "{user.name}" (groups={_go_list(list(user.groups))}) '
        "is attempting to grant RBAC permissions not currently held:\n" + "\n".join(map(_describe, missing))
    )
    raise ApiError(403, "Forbidden", message, {"name": name, "group": GROUP, "kind": plural})
