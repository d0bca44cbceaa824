"""A client-go style event recorder for the local controllers (core/v1 Events, aggregated).

Like ``record.EventRecorder``: an event names its object (``involvedObject``), is called
``<object>.<hex nanoseconds>``, and a repeat of the same (object, type, reason, message,
source) bumps ``count`` and ``lastTimestamp`` of the first one instead of adding another.
``kubectl describe job`` and ``kubectl get events`` show them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.types import now_iso


class EventRecorder:
    def __init__(self, api: Api, component: str):
        self.api = api
        self.component = component
        self.events_t = api.type("", "v1", "events")
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str, str], str] = {}  # aggregation key -> event name

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta["uid"], type_, reason, message)
        now = now_iso()
        with self._lock:
            name = self._seen.get(key)
            if name is not None:
                try:
                    current = self.api.get(self.events_t, namespace, name)
                    patch = {"count": int(current.get("count") or 1) + 1, "lastTimestamp": now}
                    self.api.patch(self.events_t, namespace, name, "application/merge-patch+json", patch)
                    return
                except ApiError:
                    pass  # deleted meanwhile (namespace gone, TTL): record a fresh one
            name = f"{meta['name']}.{time.time_ns():x}"
            body = {
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion", ""),
                    "kind": obj.get("kind", ""),
                    "namespace": namespace,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "type": type_,
                "reason": reason,
                "message": message,
                "source": {"component": self.component},
                "reportingComponent": self.component,
                "reportingInstance": "",
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "eventTime": None,
            }
            try:
                self.api.create(self.events_t, namespace, body)
            except ApiError:
                return  # a namespace being deleted takes no new events; neither does the real one
            self._seen[key] = name

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, "Warning", reason, message)
