"""HTTP front end: routing, JSON/YAML bodies, chunked watch streams, pod logs.

Paths: ``/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]``, ``/apis/G/V/...``, the legacy
``.../watch/...`` prefix, discovery documents, ``/version`` and health endpoints.
"""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.kube.apiserver import escalation, openapi, protobuf, requestinfo, resources, reviews
from tests.kube.apiserver.authn import UserInfo, impersonate
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.requestinfo import RequestInfo
from tests.kube.apiserver.selectors import parse_field_selector, parse_label_selector
from tests.kube.apiserver.tables import to_table

if TYPE_CHECKING:
    from tests.kube.apiserver.server import LocalApiServer

log = logging.getLogger(__name__)

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-benchcal-local",
    "gitCommit": "local",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "benchcal-local-apiserver"
    owner: LocalApiServer  # set on the subclass by LocalApiServer
    user: UserInfo  # who sent the current request (after impersonation)

    def log_message(self, format: str, *args: Any) -> None:  # route to logging, not stderr
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------ plumbing
    def _send(
        self, code: int, doc: Any, content_type: str = "application/json", warnings: list[str] = ()
    ) -> None:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for w in warnings:
            self.send_header("Warning", f'299 - "{w}"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _raw_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _decode(self, raw: bytes) -> Any:
        if not raw:
            return None
        ctype = self.headers.get("Content-Type", "")
        if "protobuf" in ctype and (decoded := protobuf.decode_envelope(raw)) is not None:
            return decoded  # kubectl auth can-i / whoami / create token
        if "protobuf" in ctype or "cbor" in ctype:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json, "
                f"application/yaml (got {ctype})",
            )
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {exc}") from exc

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.owner.request_count += 1
        started = time.monotonic()
        try:
            # read the body first: a refused request must not leave it on a keep-alive connection
            raw = self._raw_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            path = url.path.rstrip("/") or "/"
            # the real filter order: authenticate, impersonate, authorize, then decode and serve
            user = self.owner.authn.authenticate(self.headers.get("Authorization"))
            user = impersonate(self.owner.authz, user, self.headers)
            info = requestinfo.parse(method, path, query)
            try:
                self.owner.authz.check(user, info)
            except ApiError as exc:
                self.owner.denials.append((user.name, exc.message))
                raise
            self.user = user
            self._route(method, path, query, self._decode(raw), info)
            if query.get("watch") not in ("true", "1"):
                self.owner.request_seconds += time.monotonic() - started
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            log.exception("internal error on %s %s", method, self.path)
            self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}").status())

    # ------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict[str, str], body: Any, info: RequestInfo) -> None:
        api = self.owner.api
        types = api.all_types()
        if not info.resource_request:
            return self._nonresource(path, types)
        group, version, rest = info.api_group, info.api_version, list(info.parts)
        if info.via_watch_prefix:
            query["watch"] = "true"
        if not rest or not rest[0]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else "")
        # the Namespace object is cluster-scoped, although its requests carry its name as namespace
        namespace = (info.namespace or None) if plural != "namespaces" else None
        if sub == "finalize":
            sub = "status"
        t = api.type(group, version, plural)
        if t.namespaced and namespace is None and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if t.virtual:
            if method != "POST" or name is not None:
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {plural}")
            return self._send(201, reviews.handle(plural, body, self.user, self.owner.authz))
        if sub == "token" and plural == "serviceaccounts" and method == "POST":
            doc = reviews.token_request(self.owner.authn, api.store, namespace or "", name or "", body)
            return self._send(201, doc)
        self._resource(method, t, namespace, name, sub, query, body)

    def _nonresource(self, path: str, types: list[Any]) -> None:
        if path in ("/healthz", "/readyz", "/livez"):
            return self._send(200, b"ok", "text/plain")
        if path == "/version":
            return self._send(200, VERSION)
        doc = (
            openapi.document(types, path)
            if path.startswith("/openapi/v3")
            else resources.discovery(types, path)
        )
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._send(200, doc)

    def _resource(
        self,
        method: str,
        t: Any,
        namespace: str | None,
        name: str | None,
        sub: str,
        query: dict[str, str],
        body: Any,
    ) -> None:
        api = self.owner.api
        dry_run = query.get("dryRun") == "All"
        fv = query.get("fieldValidation", "")
        if (
            (sub and sub not in ("status", "log", "token"))
            or (sub == "status" and not t.status_subresource)
            or (sub == "log" and not t.log_subresource)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                return self._watch(t, namespace, query)
            if method == "GET":
                return self._list(t, namespace, query)
            if method == "POST":
                self._no_escalation(t, namespace, body)
                obj, warnings = api.create(t, namespace, body, dry_run=dry_run, field_validation=fv)
                return self._send(201, obj, warnings=warnings)
            if method == "DELETE":
                items, _ = api.list(t, namespace, query.get("labelSelector"), query.get("fieldSelector"))
                for item in items:
                    api.delete(t, namespace, item["metadata"]["name"], body, dry_run=dry_run)
                return self._send(
                    200,
                    {"kind": f"{t.kind}List", "apiVersion": t.api_version, "metadata": {}, "items": items},
                )
            raise ApiError(405, "MethodNotAllowed", f"method {method} not allowed on a collection")
        if sub == "log":
            return self._log(namespace or "", name, query)
        if method == "GET":
            obj = api.get(t, namespace, name)
            if "as=Table" in self.headers.get("Accept", ""):
                return self._send(
                    200,
                    to_table(
                        t, [obj], obj["metadata"]["resourceVersion"], query.get("includeObject", "Metadata")
                    ),
                )
            return self._send(200, obj)
        if method == "PUT":
            self._no_escalation(t, namespace, body)
            obj, warnings = api.update(
                t, namespace, name, body, subresource=sub, dry_run=dry_run, field_validation=fv
            )
            return self._send(200, obj, warnings=warnings)
        if method == "PATCH":
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "server-side apply is not served by the local API server; use client-side kubectl apply",
                )
            if t.group == escalation.GROUP:  # what the patch would store must not escalate either
                after, _ = api.patch(t, namespace, name, ctype, body, subresource=sub, dry_run=True)
                self._no_escalation(t, namespace, after)
            obj, warnings = api.patch(
                t, namespace, name, ctype, body, subresource=sub, dry_run=dry_run, field_validation=fv
            )
            return self._send(200, obj, warnings=warnings)
        if method == "DELETE":
            opts = dict(body or {})
            if "propagationPolicy" in query:
                opts["propagationPolicy"] = query["propagationPolicy"]
            if "gracePeriodSeconds" in query:
                opts["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
            return self._send(200, api.delete(t, namespace, name, opts, dry_run=dry_run))
        raise ApiError(405, "MethodNotAllowed", f"method {method} not allowed")

    def _no_escalation(self, t: Any, namespace: str | None, obj: Any) -> None:
        if t.group != escalation.GROUP or not isinstance(obj, dict):
            return
        try:
            escalation.check(
                self.owner.authz, self.owner.api.store, self.user, t.plural, namespace or "", obj
            )
        except ApiError as exc:
            self.owner.denials.append((self.user.name, exc.message))
            raise

    def _list(self, t: Any, namespace: str | None, query: dict[str, str]) -> None:
        items, rv = self.owner.api.list(t, namespace, query.get("labelSelector"), query.get("fieldSelector"))
        start = int(query["continue"]) if query.get("continue", "").isdigit() else 0
        limit = int(query["limit"]) if query.get("limit", "").isdigit() and int(query["limit"]) > 0 else None
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        page = items[start:]
        if limit is not None and len(page) > limit:
            page = page[:limit]
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
        if "as=Table" in self.headers.get("Accept", ""):
            table = to_table(t, page, str(rv), query.get("includeObject", "Metadata"))
            table["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return self._send(200, table)
        self._send(
            200, {"kind": f"{t.kind}List", "apiVersion": t.api_version, "metadata": meta, "items": page}
        )

    # ------------------------------------------------------------ logs
    def _log(self, namespace: str, name: str, query: dict[str, str]) -> None:
        pod = self.owner.api.get(self.owner.api.type("", "v1", "pods"), namespace, name)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container") or (containers[0] if len(containers) == 1 else None)
        if container is None:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]",
            )
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        if container not in containers + inits:  # init containers (sidecars too) have logs
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        path = Path(self.owner.log_dir) / namespace / name / f"{container}.log"
        if not path.exists():
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        text = path.read_text(errors="replace")
        if query.get("tailLines", "").isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else ""
        self._send(200, text.encode(), "text/plain")

    # ------------------------------------------------------------ watch
    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, t: Any, namespace: str | None, query: dict[str, str]) -> None:
        api = self.owner.api
        store = api.store
        match_labels = parse_label_selector(query.get("labelSelector"))
        match_fields = parse_field_selector(query.get("fieldSelector"), t.kind)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query.get("timeoutSeconds") or self.owner.max_watch_seconds)
        deadline = time.monotonic() + min(timeout, self.owner.max_watch_seconds)
        rv_param = query.get("resourceVersion", "")
        generation = self.owner.watch_generation

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if t.namespaced and namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return match_labels(obj["metadata"].get("labels") or {}) and match_fields(obj)

        initial: list[dict[str, Any]] = []
        with store.lock:
            if rv_param in ("", "0"):
                items, last_rv = api.list(
                    t, namespace, query.get("labelSelector"), query.get("fieldSelector")
                )
                initial = [{"type": "ADDED", "object": o} for o in items]
            else:
                try:
                    last_rv = int(rv_param)
                except ValueError as exc:
                    raise ApiError(400, "BadRequest", f"invalid resource version {rv_param!r}") from exc
                if last_rv < store.oldest_rv:
                    gone = ApiError(
                        410, "Expired", f"too old resource version: {last_rv} ({store.oldest_rv + 1})"
                    )
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self._chunk(json.dumps({"type": "ERROR", "object": gone.status()}).encode() + b"\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with self.owner.watch_lock:
            self.owner.active_watches += 1
        try:
            for ev in initial:
                self._chunk(json.dumps(ev).encode() + b"\n")
            last_bookmark = time.monotonic()
            while (
                time.monotonic() < deadline
                and self.owner.watch_generation == generation
                and not self.owner.stopping
            ):
                with store.lock:
                    events = store.events_after(last_rv)
                    if not events:
                        store.changed.wait(0.2)
                        events = store.events_after(last_rv)
                    current_rv = store.rv
                for ev in events:
                    last_rv = ev.rv
                    if (ev.group, ev.plural) != (t.group, t.plural):
                        continue
                    now_match, was_match = matches(ev.obj), matches(ev.prev) if ev.prev is not None else False
                    kind = ev.type
                    if ev.type == "MODIFIED" and now_match and not was_match:
                        kind = "ADDED"
                    elif ev.type == "MODIFIED" and was_match and not now_match:
                        kind = "DELETED"
                    elif not now_match:
                        continue
                    obj = api._render(t, json.loads(json.dumps(ev.obj)))
                    self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                    self.owner.watch_lags.append(time.time() - ev.at)
                if not events:
                    last_rv = max(last_rv, current_rv)
                if bookmarks and time.monotonic() - last_bookmark >= self.owner.bookmark_interval:
                    mark = {
                        "kind": t.kind,
                        "apiVersion": t.api_version,
                        "metadata": {"resourceVersion": str(last_rv)},
                    }
                    self._chunk(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
                    last_bookmark = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            with self.owner.watch_lock:
                self.owner.active_watches -= 1


def make_handler(owner: LocalApiServer) -> type[Handler]:
    return type("BoundHandler", (Handler,), {"owner": owner})


__all__ = ["Handler", "make_handler"]
