"""A tiny raw HTTP client for conformance tests: exact status codes, headers and streams."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit


class Rest:
    """``token=None`` sends no Authorization header (the server answers 401)."""

    def __init__(self, base_url: str, *, token: str | None = None, ca_file: str | None = None):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.token = token
        self.context = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl.create_default_context()
        )

    @classmethod
    def admin(cls, server: Any) -> Rest:
        return cls(server.url, token=server.admin_token, ca_file=server.ca_file)

    @classmethod
    def as_token(cls, server: Any, token: str | None) -> Rest:
        return cls(server.url, token=token, ca_file=server.ca_file)

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        conn = self._connection(30)
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": content_type, "Accept": "application/json", **self._auth(), **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any, kind: str = "merge") -> tuple[int, Any]:
        ctype = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[kind]
        return self.request("PATCH", path, body, content_type=ctype)

    def delete(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.request("DELETE", path, body)

    def watch(self, path: str, timeout: float = 10) -> Iterator[dict[str, Any]]:
        """Yield watch events until the server ends the stream (or the socket times out)."""
        conn = self._connection(timeout)
        conn.request("GET", path, headers={"Accept": "application/json", **self._auth()})
        resp = conn.getresponse()
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()
