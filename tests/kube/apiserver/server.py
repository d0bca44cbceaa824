"""``LocalApiServer``: the threaded HTTPS server on 127.0.0.1 plus its garbage collector.

Every request is authenticated (bearer token) and authorized (RBAC) before it is served; see
``authn.py`` and ``rbac.py``. Credentials for tests and pods:

- ``server.admin_token`` / ``server.admin_kubeconfig(path)``: ``system:masters`` (kubectl, the harness);
- ``server.token_for(namespace, service_account)``: a ServiceAccount's token (pods, the operator);
- ``server.kubeconfig_for(path, namespace, service_account)``: a kubeconfig with that token;
- ``server.ca_file``: the CA of the serving certificate (kubeconfigs and pods' ``ca.crt`` use it).
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.kube.apiserver import tls
from tests.kube.apiserver.api import Api
from tests.kube.apiserver.authn import Authenticator
from tests.kube.apiserver.gc import GarbageCollector
from tests.kube.apiserver.http import make_handler
from tests.kube.apiserver.rbac import Authorizer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's own thread, so a slow client never blocks accept().
        if self.ssl_context is not None:
            try:
                request.settimeout(30)
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                with contextlib.suppress(OSError):
                    request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
            return  # a client hung up (kopf closing a watch, a killed operator): not a server error
        super().handle_error(request, client_address)


class LocalApiServer:
    """Serve the Kubernetes API subset on ``https://127.0.0.1:<port>``.

    ``bookmark_interval``: seconds between BOOKMARK events on watches that allow them (the real
    server sends about one a minute; tests use a shorter interval). ``max_watch_seconds``: the
    longest a watch stays open (the real server picks 30-60 min). ``anonymous``: serve requests
    without a token as ``system:anonymous`` (kube-apiserver's default) instead of 401 (a
    hardened server's ``--anonymous-auth=false``). ``host``/``extra_sans``: where to listen and
    further names for the certificate (for containers that dial the host by another address).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        log_dir: str | Path | None = None,
        history: int = 20000,
        bookmark_interval: float = 5.0,
        max_watch_seconds: float = 1800.0,
        anonymous: bool = False,
        host: str = "127.0.0.1",
        extra_sans: tuple[str, ...] = (),
    ):
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kube-logs-"))
        self.certs = tls.generate(self.log_dir.parent / f"{self.log_dir.name}-pki", (host, *extra_sans))
        self.api = Api(history=history, root_ca_pem=self.certs.ca_pem)
        self.authn = Authenticator(self.api.store, anonymous=anonymous)
        self.authz = Authorizer(self.api.store)
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.watch_generation = 0
        self.watch_lock = threading.Lock()
        self.active_watches = 0
        self.request_count = 0
        self.request_seconds = 0.0  # time spent serving non-watch requests (benchmarks report it)
        self.watch_lags: list[float] = []  # seconds from each write to its delivery on a watch
        self.stopping = False
        self.denials: list[tuple[str, str]] = []  # (user, 403 message) of every refused request
        self._host = host
        self._httpd = _Server((host, port), make_handler(self))
        self._httpd.ssl_context = self.certs.server_context()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="kube-apiserver", daemon=True
        )
        self.gc = GarbageCollector(self.api)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"https://{host}:{self.port}"

    # ------------------------------------------------------------ credentials
    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file

    @property
    def admin_token(self) -> str:
        return self.authn.admin_token

    def token_for(self, namespace: str, service_account: str, **kwargs: Any) -> str:
        """A bearer token that authenticates as ``system:serviceaccount:NS:NAME`` (the SA must exist)."""
        return self.authn.token_for(namespace, service_account, **kwargs)

    def add_user(self, name: str, groups: tuple[str, ...] = ()) -> str:
        """A token for a person (``User`` subject in bindings)."""
        return self.authn.add_user(name, groups)

    def kubeconfig(self, path: str | Path, token: str, namespace: str = "default") -> Path:
        from tests.kube.kubeconfig import write_kubeconfig

        return write_kubeconfig(path, self.url, namespace, token=token, ca_file=self.ca_file)

    def admin_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        return self.kubeconfig(path, self.admin_token, namespace)

    def kubeconfig_for(
        self, path: str | Path, namespace: str, service_account: str, *, expiration_seconds: int = 86400
    ) -> Path:
        token = self.token_for(namespace, service_account, expiration_seconds=expiration_seconds)
        return self.kubeconfig(path, token, namespace)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalApiServer:
        self._thread.start()
        self.gc.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        self.gc.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def restart_watches(self) -> None:
        """End every open watch stream cleanly, as an API server restart or LB timeout does."""
        self.watch_generation += 1

    def compact(self) -> None:
        """Drop the event history: watches resuming from an older resourceVersion get 410 Gone."""
        self.api.store.compact()

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
