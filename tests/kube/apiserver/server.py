"""``LocalApiServer``: the threaded HTTP server on 127.0.0.1 plus its garbage collector."""

from __future__ import annotations

import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.kube.apiserver.api import Api
from tests.kube.apiserver.gc import GarbageCollector
from tests.kube.apiserver.http import make_handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client hung up (kopf closing a watch, a killed operator): not a server error
        super().handle_error(request, client_address)


class LocalApiServer:
    """Serve the Kubernetes API subset on ``http://127.0.0.1:<port>``.

    ``bookmark_interval``: seconds between BOOKMARK events on watches that allow them (the real
    server sends about one a minute; tests use a shorter interval). ``max_watch_seconds``: the
    longest a watch stays open (the real server picks 30-60 min).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        log_dir: str | Path | None = None,
        history: int = 20000,
        bookmark_interval: float = 5.0,
        max_watch_seconds: float = 1800.0,
    ):
        self.api = Api(history=history)
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kube-logs-"))
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.watch_generation = 0
        self.watch_lock = threading.Lock()
        self.active_watches = 0
        self.request_count = 0
        self.request_seconds = 0.0  # time spent serving non-watch requests (benchmarks report it)
        self.watch_lags: list[float] = []  # seconds from each write to its delivery on a watch
        self.stopping = False
        self._httpd = _Server(("127.0.0.1", port), make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="kube-apiserver", daemon=True
        )
        self.gc = GarbageCollector(self.api)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
