"""Garbage collector and namespace controller: ownerReferences, foreground/orphan finalizers.

Runs in a background thread like kube-controller-manager's GC: asynchronous, so a dependent
outlives its owner for a moment (tests must wait, as they would on a real cluster).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from tests.kube.apiserver.api import Api
from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.resources import ResourceType

log = logging.getLogger(__name__)


class GarbageCollector:
    def __init__(self, api: Api, interval: float = 0.5):
        self.api = api
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kube-gc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.api.gc_wakeup.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.api.gc_wakeup.wait(self.interval)
            self.api.gc_wakeup.clear()
            try:
                while self.sweep():
                    pass
            except Exception:  # keep collecting; a bug here must not kill the server
                log.exception("garbage collector sweep failed")

    def _type_of(self, key: tuple[str, str, str, str]) -> ResourceType | None:
        for t in self.api.all_types():
            if (t.group, t.plural) == key[:2]:
                return t
        return None

    def sweep(self) -> bool:
        """One pass; True when something changed (so another pass may find more)."""
        with self.api.store.lock:
            snapshot = {k: v for k, v in self.api.store.objects.items()}
            uids = {o["metadata"]["uid"]: k for k, o in snapshot.items()}
        changed = False
        for key, obj in snapshot.items():
            meta = obj["metadata"]
            t = self._type_of(key)
            if t is None:
                continue
            ns = key[2] or None
            if meta.get("deletionTimestamp"):
                changed |= self._finish_deletion(t, ns, obj, snapshot)
            refs = meta.get("ownerReferences") or []
            orphaned = refs and not any(
                r.get("uid") in uids and self._owner_matches(snapshot[uids[r["uid"]]], r, key) for r in refs
            )
            if orphaned and not meta.get("deletionTimestamp"):
                changed |= self._delete(t, ns, meta["name"], "Background")
        return changed

    @staticmethod
    def _owner_matches(
        owner: dict[str, Any], ref: dict[str, Any], dep_key: tuple[str, str, str, str]
    ) -> bool:
        # An owner must be cluster-scoped or in the dependent's namespace.
        owner_ns = owner["metadata"].get("namespace") or ""
        return owner_ns in ("", dep_key[2]) and owner["metadata"]["name"] == ref.get("name")

    def _dependents(self, uid: str, snapshot: dict) -> list[tuple[tuple[str, str, str, str], dict[str, Any]]]:
        return [
            (k, o)
            for k, o in snapshot.items()
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _finish_deletion(self, t: ResourceType, ns: str | None, obj: dict[str, Any], snapshot: dict) -> bool:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        uid = meta["uid"]
        if t.kind == "Namespace":
            name = meta["name"]
            contents = [k for k in snapshot if k[2] == name]
            for k in contents:
                kt = self._type_of(k)
                if kt is not None and kt.namespaced:
                    self._delete(kt, name, k[3], "Background", grace_zero=True)
            if contents:
                return True
            return self._remove_finalizer(t, None, name, None, namespace_done=True)
        if "orphan" in finalizers:
            for k, dep in self._dependents(uid, snapshot):
                dt = self._type_of(k)
                refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                if dt is not None:
                    self._patch_meta(dt, k[2] or None, k[3], {"ownerReferences": refs or None})
            return self._remove_finalizer(t, ns, meta["name"], "orphan")
        if "foregroundDeletion" in finalizers:
            deps = self._dependents(uid, snapshot)
            for k, dep in deps:
                dt = self._type_of(k)
                if dt is not None and not dep["metadata"].get("deletionTimestamp"):
                    self._delete(dt, k[2] or None, k[3], "Foreground")
            if not deps:
                return self._remove_finalizer(t, ns, meta["name"], "foregroundDeletion")
        return False

    def _delete(
        self, t: ResourceType, ns: str | None, name: str, policy: str, grace_zero: bool = False
    ) -> bool:
        try:
            opts: dict[str, Any] = {"propagationPolicy": policy}
            if grace_zero:
                opts["gracePeriodSeconds"] = 0
            self.api.delete(t, ns, name, opts)
            return True
        except ApiError:
            return False

    def _patch_meta(self, t: ResourceType, ns: str | None, name: str, meta_patch: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.api.patch(t, ns, name, "application/merge-patch+json", {"metadata": meta_patch})

    def _remove_finalizer(
        self, t: ResourceType, ns: str | None, name: str, finalizer: str | None, namespace_done: bool = False
    ) -> bool:
        try:
            obj = self.api.get(t, ns, name)
        except ApiError:
            return False
        if namespace_done:
            removed = self.api.store.remove((t.group, t.plural, "", name))
            return removed is not None
        fins = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        try:
            self.api.update(
                t, ns, name, {**obj, "metadata": {**obj["metadata"], "finalizers": fins}}, require_rv=True
            )
            return True
        except ApiError:
            return False
