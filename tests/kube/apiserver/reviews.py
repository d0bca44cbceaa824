"""The create-only, never-stored APIs: access reviews, who-am-I, and TokenRequest.

``kubectl auth can-i`` posts a SelfSubjectAccessReview (``--list``: a SelfSubjectRulesReview),
``kubectl auth whoami`` a SelfSubjectReview, ``kubectl create token SA`` a TokenRequest to
``serviceaccounts/SA/token``. Answers are computed by the same authorizer as every request.
"""

from __future__ import annotations

import time
from typing import Any

from tests.kube.apiserver.authn import Authenticator, UserInfo
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.rbac import Authorizer
from tests.kube.apiserver.requestinfo import RequestInfo
from tests.kube.apiserver.store import Store
from tests.kube.apiserver.types import now_iso


def _attributes(spec: dict[str, Any]) -> RequestInfo:
    res = spec.get("resourceAttributes")
    if res is not None:
        return RequestInfo(
            path="",
            verb=res.get("verb", ""),
            resource_request=True,
            api_group=res.get("group", ""),
            api_version=res.get("version", ""),
            namespace=res.get("namespace", ""),
            resource=res.get("resource", ""),
            subresource=res.get("subresource", ""),
            name=res.get("name", ""),
        )
    non = spec.get("nonResourceAttributes") or {}
    return RequestInfo(path=non.get("path", ""), verb=non.get("verb", ""))


def _review(body: dict[str, Any], kind: str, user: UserInfo, authz: Authorizer) -> dict[str, Any]:
    spec = body.get("spec") or {}
    if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
        raise ApiError(
            422,
            "Invalid",
            f'{kind}.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: '
            '"null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
        )
    allowed, reason = authz.authorize(user, _attributes(spec))
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {
        "kind": kind,
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": spec,
        "status": status,
    }


def _rules_review(body: dict[str, Any], user: UserInfo, authz: Authorizer) -> dict[str, Any]:
    spec = body.get("spec") or {}
    rules, errors = authz.rules_for(user, spec.get("namespace", ""))
    resource_rules = [
        {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
        for r in rules
        if r.get("resources")
    ]
    non_resource = [
        {"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
        for r in rules
        if r.get("nonResourceURLs")
    ]
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource,
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = ", ".join(errors)
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": spec,
        "status": status,
    }


def handle(plural: str, body: Any, user: UserInfo, authz: Authorizer) -> dict[str, Any]:
    """The response to a POST of a virtual resource (the request is already authorized)."""
    body = body if isinstance(body, dict) else {}
    if plural == "selfsubjectaccessreviews":
        return _review(body, "SelfSubjectAccessReview", user, authz)
    if plural == "subjectaccessreviews":
        spec = body.get("spec") or {}
        subject = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
        return _review(body, "SubjectAccessReview", subject, authz)
    if plural == "selfsubjectrulesreviews":
        return _rules_review(body, user, authz)
    if plural == "selfsubjectreviews":
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": now_iso()},
            "status": {"userInfo": user.to_dict()},
        }
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


def token_request(
    authn: Authenticator, store: Store, namespace: str, service_account: str, body: Any
) -> dict[str, Any]:
    """``POST serviceaccounts/NAME/token``: a bound token, as the TokenRequest API returns it."""
    spec = dict((body or {}).get("spec") or {})
    seconds = int(spec.get("expirationSeconds") or 3600)
    if seconds < 600:
        raise ApiError(
            422,
            "Invalid",
            f'TokenRequest.authentication.k8s.io "{service_account}" is invalid: spec.expirationSeconds: '
            f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
        )
    pod = None
    ref = spec.get("boundObjectRef") or {}
    if ref.get("kind") == "Pod":
        pod = store.get(("", "pods", namespace, ref.get("name", "")))
        if pod is None or (ref.get("uid") and ref["uid"] != pod["metadata"]["uid"]):
            raise ApiError(404, "NotFound", f'pods "{ref.get("name")}" not found')
    audiences = tuple(spec.get("audiences") or ()) or ("https://kubernetes.default.svc.cluster.local",)
    token = authn.token_for(
        namespace, service_account, pod=pod, expiration_seconds=seconds, audiences=audiences
    )
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": service_account, "namespace": namespace, "creationTimestamp": None},
        "spec": {**spec, "audiences": list(audiences), "expirationSeconds": seconds},
        "status": {"token": token, "expirationTimestamp": expires},
    }
