"""Authentication: bearer tokens to users, as kube-apiserver's token authenticators do.

- The admin token (``Authenticator.admin_token``) is user ``kubernetes-admin`` in group
  ``system:masters`` (bound to ``cluster-admin``), what kubeadm's admin.conf carries.
- Service-account tokens are signed JWTs (HS256 here, RS256 on a real server) with the
  claims of a bound token (``kubernetes.io``: namespace, serviceaccount name+uid, pod
  name+uid). They authenticate as ``system:serviceaccount:NS:NAME`` in groups
  ``system:serviceaccounts``, ``system:serviceaccounts:NS`` and ``system:authenticated`` for
  as long as they are unexpired, the ServiceAccount still exists with the same uid and, for a
  pod-bound token, that pod still exists — as the real ServiceAccount token authenticator checks.
- Extra static users (``add_user``) stand for people: ``alice`` bound to ``edit``, and so on.
- No token: 401, unless ``anonymous`` is on (then ``system:anonymous``). A bad token: 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.kube.apiserver.errors import ApiError

if TYPE_CHECKING:
    from tests.kube.apiserver.store import Store

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            doc["uid"] = self.uid
        if self.extra:
            doc["extra"] = {k: list(v) for k, v in self.extra.items()}
        return doc


ADMIN = UserInfo("kubernetes-admin", ("system:masters", AUTHENTICATED))
ANONYMOUS = UserInfo("system:anonymous", (UNAUTHENTICATED,))


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_user(namespace: str, name: str, uid: str = "", **extra: str) -> UserInfo:
    return UserInfo(
        service_account_username(namespace, name),
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        uid,
        {f"authentication.kubernetes.io/{k.replace('_', '-')}": (v,) for k, v in extra.items() if v},
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    def __init__(self, store: Store, *, anonymous: bool = False):
        self.store = store
        self.anonymous = anonymous
        self._key = secrets.token_bytes(32)
        self._static: dict[str, UserInfo] = {}
        self.admin_token = self.add_user(ADMIN.name, ADMIN.groups)

    def add_user(self, name: str, groups: tuple[str, ...] = ()) -> str:
        """A static token user (a person); ``system:authenticated`` is added as the server does."""
        token = secrets.token_urlsafe(32)
        self._static[token] = UserInfo(name, tuple(dict.fromkeys((*groups, AUTHENTICATED))))
        return token

    # ------------------------------------------------------------ service-account tokens
    def token_for(
        self,
        namespace: str,
        service_account: str,
        *,
        pod: dict[str, Any] | None = None,
        expiration_seconds: int = 3607,
        audiences: tuple[str, ...] = (AUDIENCE,),
    ) -> str:
        """A token for an existing ServiceAccount (404 NotFound if it does not exist)."""
        sa = self.store.get(("", "serviceaccounts", namespace, service_account))
        if sa is None:
            raise ApiError(
                404,
                "NotFound",
                f'serviceaccounts "{service_account}" not found',
                {"name": service_account, "kind": "serviceaccounts"},
            )
        now = int(time.time())
        k8s: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": sa["metadata"]["uid"]},
        }
        if pod is not None:
            k8s["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        claims = {
            "aud": list(audiences),
            "exp": now + expiration_seconds,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "jti": secrets.token_hex(8),
            "sub": service_account_username(namespace, service_account),
            "kubernetes.io": k8s,
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"

    def _service_account(self, token: str) -> UserInfo | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        sig = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(sig), parts[2]):
            return None
        claims = json.loads(_unb64(parts[1]))
        if claims.get("exp", 0) < time.time() or claims.get("iss") != ISSUER:
            return None
        k8s = claims["kubernetes.io"]
        ns, sa_ref = k8s["namespace"], k8s["serviceaccount"]
        with self.store.lock:
            sa = self.store.objects.get(("", "serviceaccounts", ns, sa_ref["name"]))
            if sa is None or sa["metadata"]["uid"] != sa_ref["uid"]:
                return None  # the ServiceAccount was deleted (or deleted and re-created)
            pod_ref = k8s.get("pod")
            if pod_ref is not None:
                pod = self.store.objects.get(("", "pods", ns, pod_ref["name"]))
                if pod is None or pod["metadata"]["uid"] != pod_ref["uid"]:
                    return None  # the pod the token is bound to is gone
        return service_account_user(
            ns,
            sa_ref["name"],
            sa_ref["uid"],
            **({"pod_name": pod_ref["name"], "pod_uid": pod_ref["uid"]} if pod_ref else {}),
        )

    # ------------------------------------------------------------ requests
    def authenticate(self, authorization: str | None) -> UserInfo:
        """The user of a request's ``Authorization`` header; raises the 401 a real server sends."""
        if not authorization:
            if self.anonymous:
                return ANONYMOUS
            raise unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        user = self._static.get(token) or self._service_account(token)
        if user is None:
            raise unauthorized()
        return user


def impersonate(authz: Any, user: UserInfo, headers: Any) -> UserInfo:
    """Apply ``Impersonate-User``/``-Group``/``-Uid`` headers (kubectl ``--as``/``--as-group``).

    The acting user needs ``impersonate`` on ``users`` (or ``serviceaccounts`` in the
    account's namespace for ``system:serviceaccount:NS:NAME``), on each ``groups`` and on
    ``uids``; otherwise the real 403 for that check.
    """
    from tests.kube.apiserver.requestinfo import RequestInfo

    name = headers.get("Impersonate-User")
    groups = tuple(headers.get_all("Impersonate-Group") or ())
    uid = headers.get("Impersonate-Uid") or ""
    if not name:
        if groups or uid:
            raise ApiError(
                500, "InternalError", "Internal error occurred: requested impersonation without a user"
            )
        return user

    def need(resource: str, target: str, namespace: str = "") -> None:
        info = RequestInfo(
            path="",
            verb="impersonate",
            resource_request=True,
            api_version="v1",
            resource=resource,
            name=target,
            namespace=namespace,
        )
        authz.check(user, info)

    sa = name.split(":")
    if len(sa) == 4 and sa[:2] == ["system", "serviceaccount"]:
        need("serviceaccounts", sa[3], sa[2])
        default_groups: tuple[str, ...] = service_account_user(sa[2], sa[3]).groups
    else:
        need("users", name)
        default_groups = ()
    for group in groups:
        need("groups", group)
    if uid:
        need("uids", uid)
    final = groups if groups else default_groups
    if name == ANONYMOUS.name:
        final = tuple(dict.fromkeys((*final, UNAUTHENTICATED)))
    else:
        final = tuple(dict.fromkeys((*final, AUTHENTICATED)))
    return UserInfo(name, final, uid)
