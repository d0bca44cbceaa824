"""Object storage with one global resourceVersion counter and a bounded event history.

Like etcd behind the real server: every write bumps the counter; watches replay the history
after a given resourceVersion, and a resourceVersion older than the retained history is
"too old" (410 Gone). ``compact()`` lets tests force that.
"""

from __future__ import annotations

import copy
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

StoreKey = tuple[str, str, str, str]  # (group, plural, namespace, name)


@dataclass
class Event:
    rv: int
    group: str
    plural: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    at: float = 0.0  # wall-clock time of the write (benchmarks measure latencies from it)


class Store:
    def __init__(self, history: int = 20000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 100
        self.objects: dict[StoreKey, dict[str, Any]] = {}
        self.by_uid: dict[str, StoreKey] = {}
        self.history: list[Event] = []
        self.max_history = history
        self.oldest_rv = self.rv  # events with rv <= oldest_rv are no longer retained
        self.group_rv: dict[str, int] = {}  # API group -> resourceVersion of its last write (caches)

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, key: StoreKey) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Deep copies of the matching objects (filtered before copying: lists are hot in tests)."""
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (g, p, ns, _), o in sorted(self.objects.items())
                if g == group
                and p == plural
                and (namespace is None or ns == namespace)
                and (keep is None or keep(o))
            ]
            return items, self.rv

    def put(self, key: StoreKey, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        """Store ``obj`` with a fresh resourceVersion and record the event. Caller holds no lock."""
        with self.lock:
            prev = self.objects.get(key)
            rv = self.next_rv()
            self.group_rv[key[0]] = rv
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(rv)
            self.objects[key] = obj
            self.by_uid[obj["metadata"]["uid"]] = key
            self._record(Event(rv, key[0], key[1], event_type, obj, prev))
            return copy.deepcopy(obj)

    def remove(self, key: StoreKey) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.pop(key, None)
            if obj is None:
                return None
            self.by_uid.pop(obj["metadata"]["uid"], None)
            rv = self.next_rv()
            self.group_rv[key[0]] = rv
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(rv)
            self._record(Event(rv, key[0], key[1], "DELETED", obj, obj))
            return copy.deepcopy(obj)

    def _record(self, event: Event) -> None:
        event.at = time.time()
        self.history.append(event)
        if len(self.history) > 2 * self.max_history:
            drop = len(self.history) - self.max_history
            self.oldest_rv = self.history[drop - 1].rv
            del self.history[:drop]
        self.changed.notify_all()

    def events_after(self, rv: int) -> list[Event]:
        with self.lock:
            return self.history[bisect_right(self.history, rv, key=lambda e: e.rv) :]

    def compact(self) -> None:
        """Forget all history (as etcd compaction does); older resourceVersions become 410."""
        with self.lock:
            self.history.clear()
            self.oldest_rv = self.rv
