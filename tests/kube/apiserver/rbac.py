"""RBAC authorization (rbac.authorization.k8s.io/v1), evaluated from the stored objects.

As the real RBAC authorizer: a request is allowed when a rule reachable from a binding whose
subjects match the user allows it — ClusterRoleBindings everywhere, RoleBindings (to a Role
of their namespace or to a ClusterRole) only in their namespace. Rules match on verbs,
apiGroups, resources (``resource/subresource`` combined, ``*``, ``*/sub``), resourceNames
(a rule with names never matches a request without one: list, watch, create) and
nonResourceURLs (exact or ``prefix*``). A binding naming a missing role adds
``RBAC: role.rbac.authorization.k8s.io "x" not found`` to the 403's message, as the real
one does. ClusterRoles with an ``aggregationRule`` get the union of the rules of the
ClusterRoles their selectors match (the clusterrole-aggregation controller), recomputed on
every ClusterRole write.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from tests.kube.apiserver.authn import UserInfo, service_account_username
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.requestinfo import RequestInfo
from tests.kube.apiserver.selectors import parse_label_selector

if TYPE_CHECKING:
    from tests.kube.apiserver.store import Store

GROUP = "rbac.authorization.k8s.io"
Rule = dict[str, Any]


# ------------------------------------------------------------ rule matching (pure)
def _has(values: list[str] | None, want: str) -> bool:
    values = values or []
    return "*" in values or want in values


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for r in rule.get("resources") or []:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def nonresource_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(info: RequestInfo, rule: Rule) -> bool:
    if not _has(rule.get("verbs"), info.verb):
        return False
    if not info.resource_request:
        return nonresource_matches(rule, info.path)
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    names = rule.get("resourceNames") or []
    return (
        _has(rule.get("apiGroups"), info.api_group)
        and resource_matches(rule, combined, info.subresource)
        and (not names or info.name in names)
    )


def subject_matches(subject: dict[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return bool(ns) and user.name == service_account_username(ns, name)
    return False


def forbidden(info: RequestInfo, user: UserInfo, reason: str = "") -> ApiError:
    """The real 403 (k8s.io/apiserver responsewriters.Forbidden + apierrors.NewForbidden)."""
    if not info.resource_request:
        msg = f'User "{user.name}" cannot {info.verb} path "{info.path}"'
    else:
        res = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
        msg = (
            f'User "{user.name}" cannot {info.verb} resource "{res}" in API group "{info.api_group}" {where}'
        )
    if reason:
        msg = f"{msg}: {reason}"
    qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    if not info.resource_request or not qualified:
        message = f"forbidden: {msg}"
    elif info.name:
        message = f'{qualified} "{info.name}" is forbidden: {msg}'
    else:
        message = f"{qualified} is forbidden: {msg}"
    details: dict[str, Any] = {}
    if info.name:
        details["name"] = info.name
    if info.api_group:
        details["group"] = info.api_group
    if info.resource:
        details["kind"] = info.resource
    return ApiError(403, "Forbidden", message, details)


# ------------------------------------------------------------ the authorizer
class Authorizer:
    """Resolves the rules that apply to (user, namespace) from the store, cached per RBAC change."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[list[Rule], list[str]]] = {}
        self._cache_rv = -1

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """(rules, resolution errors) for the user in a namespace ("" = cluster-wide bindings only)."""
        rv = self.store.group_rv.get(GROUP, 0)
        key = (user.name, user.groups, namespace)
        with self._lock:
            if rv != self._cache_rv:
                self._cache.clear()
                self._cache_rv = rv
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        rules: list[Rule] = []
        errors: list[str] = []
        with self.store.lock:
            objects = self.store.objects

            def role_rules(kind: str, name: str, ns: str) -> None:
                if kind == "ClusterRole":
                    role = objects.get((GROUP, "clusterroles", "", name))
                    label = f'clusterrole.{GROUP} "{name}" not found'
                else:
                    role = objects.get((GROUP, "roles", ns, name))
                    label = f'role.{GROUP} "{name}" not found'
                if role is None:
                    errors.append(label)
                else:
                    rules.extend(role.get("rules") or [])

            for (g, plural, ns, _), obj in objects.items():
                if g != GROUP or plural not in ("clusterrolebindings", "rolebindings"):
                    continue
                if plural == "rolebindings" and (not namespace or ns != namespace):
                    continue
                if not any(subject_matches(s, user, ns) for s in obj.get("subjects") or []):
                    continue
                ref = obj.get("roleRef") or {}
                role_rules(ref.get("kind", ""), ref.get("name", ""), ns)
        with self._lock:
            self._cache[key] = (rules, errors)
        return rules, errors

    def authorize(self, user: UserInfo, info: RequestInfo) -> tuple[bool, str]:
        """(allowed, reason); the reason is the RBAC resolution errors, as in a real 403."""
        rules, errors = self.rules_for(user, info.namespace if info.resource_request else "")
        if any(rule_allows(info, r) for r in rules):
            return True, ""
        if not errors:
            return False, ""
        return False, "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")

    def check(self, user: UserInfo, info: RequestInfo) -> None:
        allowed, reason = self.authorize(user, info)
        if not allowed:
            raise forbidden(info, user, reason)


# ------------------------------------------------------------ aggregation controller (pure)
def aggregated_rules(role: dict[str, Any], cluster_roles: list[dict[str, Any]]) -> list[Rule] | None:
    """The rules an aggregated ClusterRole should hold (None: not aggregated)."""
    agg = role.get("aggregationRule")
    if not agg:
        return None
    out: list[Rule] = []
    matchers = [parse_label_selector(_selector_text(sel)) for sel in agg.get("clusterRoleSelectors") or []]
    for other in sorted(cluster_roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == role["metadata"]["name"]:
            continue
        labels = other["metadata"].get("labels") or {}
        if any(m(labels) for m in matchers):
            for rule in other.get("rules") or []:
                if rule not in out:
                    out.append(rule)
    return out


def _selector_text(sel: dict[str, Any]) -> str:
    terms = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(expr.get("values") or [])
        terms.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                op, f"!{key}"
            )
        )
    return ",".join(terms)


def aggregate_cluster_roles(api: Any) -> None:
    """The clusterrole-aggregation controller, run after every ClusterRole write (``Api`` hook)."""
    t = api.type(GROUP, "v1", "clusterroles")
    roles, _ = api.list(t, None)
    for role in roles:
        rules = aggregated_rules(role, roles)
        if rules is not None and rules != (role.get("rules") or []):
            with contextlib.suppress(ApiError):
                api.update(t, None, role["metadata"]["name"], {**role, "rules": rules}, require_rv=False)
