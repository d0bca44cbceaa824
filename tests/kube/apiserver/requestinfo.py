"""What a request asks for, in the authorizer's terms (k8s.io/apiserver's RequestInfoFactory).

Resource requests: ``/api/v1/...`` and ``/apis/G/V/...`` with at least a resource; the verb
comes from the method (GET on a collection is ``list``, or ``watch`` with ``?watch=true``;
DELETE on a collection is ``deletecollection``), ``/watch/`` prefixes give ``watch``.
``namespaces/NS`` sets the namespace — also for the Namespace object itself, so a
RoleBinding can grant ``get`` on its own namespace. Everything else (discovery, ``/version``,
``/healthz``, ``/openapi``) is a non-resource request whose verb is the lowercase method.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    via_watch_prefix: bool = False


def _exact_name(field_selector: str) -> str:
    for term in field_selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if key.strip() == "metadata.name" and op and "!" not in key:
            return value.strip()
    return ""


def parse(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    nonresource = RequestInfo(path=path or "/", verb=method.lower())
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return nonresource
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return nonresource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = _METHOD_VERBS.get(method, "")
    via_watch = False
    if rest and rest[0] == "watch":
        if len(rest) < 2:
            return nonresource
        verb, rest, via_watch = "watch", rest[1:], True
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() not in ("", "false", "0") else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        path=path,
        verb=verb,
        resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=sub,
        name=name,
        parts=tuple(rest),
        via_watch_prefix=via_watch,
    )
