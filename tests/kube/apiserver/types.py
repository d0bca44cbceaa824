"""The served resource types: built-ins plus those CustomResourceDefinitions add at runtime."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from tests.kube.apiserver.errors import ApiError
from tests.kube.apiserver.resources import ResourceType
from tests.kube.apiserver.store import Store


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TypeRegistry:
    def __init__(self, builtins: list[ResourceType]):
        self.lock = threading.RLock()
        self._types: dict[tuple[str, str, str], ResourceType] = {t.key: t for t in builtins}

    def get(self, group: str, version: str, plural: str) -> ResourceType:
        with self.lock:
            t = self._types.get((group, version, plural))
        if t is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return t

    def all(self) -> list[ResourceType]:
        with self.lock:
            return list(self._types.values())

    def register_crd(self, crd: dict[str, Any], store: Store) -> None:
        """Serve the CRD's versions and mark it Established/NamesAccepted."""
        spec = crd["spec"]
        with self.lock:
            for key in [
                k
                for k, v in self._types.items()
                if not v.builtin and (v.group, v.plural) == (spec["group"], spec["names"]["plural"])
            ]:
                del self._types[key]
            for version in spec.get("versions") or []:
                if version.get("served", True):
                    t = ResourceType.from_crd(crd, version)
                    self._types[t.key] = t
        status = {
            "acceptedNames": {k: v for k, v in spec["names"].items()},
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now_iso(),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now_iso(),
                },
            ],
        }
        if crd.get("status", {}).get("conditions"):
            return
        key = ("apiextensions.k8s.io", "customresourcedefinitions", "", crd["metadata"]["name"])
        with store.lock:
            current = store.get(key)
            if current is not None and current["metadata"]["uid"] == crd["metadata"]["uid"]:
                current["status"] = status
                store.put(key, current, "MODIFIED")

    def unregister_crd(self, crd: dict[str, Any], store: Store) -> None:
        """Stop serving the CRD and delete its objects, as the real server does."""
        spec = crd["spec"]
        group, plural = spec["group"], spec["names"]["plural"]
        with self.lock:
            for key in [
                k for k, v in self._types.items() if not v.builtin and (v.group, v.plural) == (group, plural)
            ]:
                del self._types[key]
        with store.lock:
            for key in [k for k in store.objects if k[0] == group and k[1] == plural]:
                store.remove(key)
