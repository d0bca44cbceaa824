"""REST semantics of the local API server, independent of HTTP.

``Api`` implements create/get/list/update/patch/delete for every served type, the status
subresource split, generation, optimistic concurrency, finalizers and deletionTimestamp,
CRD registration with schema enforcement, and namespaces. The HTTP layer only parses requests
and renders the results; the job runner calls this class directly (it is the "kubelet").
"""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.kube.apiserver import admission, bootstrap, plugins, rbac, schema
from tests.kube.apiserver.errors import ApiError, already_exists, conflict, invalid, not_found
from tests.kube.apiserver.patch import json_merge, json_patch, strategic_merge
from tests.kube.apiserver.resources import ResourceType, builtin_types
from tests.kube.apiserver.selectors import parse_field_selector, parse_label_selector
from tests.kube.apiserver.store import Store, StoreKey
from tests.kube.apiserver.types import TypeRegistry, now_iso

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet generateName suffixes use


class Api:
    def __init__(self, history: int = 20000, root_ca_pem: str = ""):
        self.store = Store(history)
        self.types = TypeRegistry(builtin_types())
        self.gc_wakeup = threading.Event()
        self.create_counts: dict[StoreKey, int] = {}  # successful creates per name (tests detect duplicates)
        self.root_ca_pem = root_ca_pem  # published in every namespace as ConfigMap kube-root-ca.crt
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.type("", "v1", "namespaces"), None, {"metadata": {"name": ns}})
        for role in bootstrap.cluster_roles():
            self.create(self.type(rbac.GROUP, "v1", "clusterroles"), None, role)
        for binding in bootstrap.cluster_role_bindings():
            self.create(self.type(rbac.GROUP, "v1", "clusterrolebindings"), None, binding)

    # ------------------------------------------------------------ type registry (see types.py)
    def type(self, group: str, version: str, plural: str) -> ResourceType:
        return self.types.get(group, version, plural)

    def all_types(self) -> list[ResourceType]:
        return self.types.all()

    # ------------------------------------------------------------ reads
    def _key(self, t: ResourceType, namespace: str | None, name: str) -> StoreKey:
        return (t.group, t.plural, namespace or "" if t.namespaced else "", name)

    def _render(self, t: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"] = t.api_version  # CRD versions share storage (conversion strategy None)
        obj["kind"] = t.kind
        if not t.builtin and t.schema is not None:
            schema.apply_defaults(obj, t.schema)  # defaults also apply when reading, as the real server does
        return obj

    def get(self, t: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(self._key(t, namespace, name))
        if obj is None:
            raise not_found(t.kind_label(), name)
        return self._render(t, obj)

    def list(
        self,
        t: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """``keep`` (in-process callers only) filters the stored objects before they are copied."""
        match_labels = parse_label_selector(label_selector)
        match_fields = parse_field_selector(field_selector, t.kind)
        items, rv = self.store.list(
            t.group,
            t.plural,
            namespace if t.namespaced else None,
            lambda o: (
                match_labels(o["metadata"].get("labels") or {})
                and match_fields(o)
                and (keep is None or keep(o))
            ),
        )
        return [self._render(t, o) for o in items], rv

    # ------------------------------------------------------------ create
    def create(
        self,
        t: ResourceType,
        namespace: str | None,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        field_validation: str = "",
    ) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if body.get("kind") not in (None, t.kind) or body.get("apiVersion") not in (None, t.api_version):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not "
                f"match the expected API version ({t.api_version})",
            )
        if t.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
            self._check_namespace_open(namespace or "")
        else:
            meta.pop("namespace", None)
        if t.kind == "Pod":  # mutating admission runs before the name is generated
            plugins.admit_service_account(self.store, t, obj, namespace or "")
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
            else:
                raise invalid(
                    t.kind,
                    t.group,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
        name = meta["name"]
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(key, None)
        uid = str(uuid.uuid4())
        meta["uid"] = uid
        meta["creationTimestamp"] = now_iso()
        if t.status_subresource and t.kind != "CustomResourceDefinition":
            obj.pop("status", None)  # status is not settable on create through the main resource
        warnings = admission.admit(t, obj, None, field_validation)
        warnings += plugins.admit_pod_security(self.store, t, obj, namespace or "")
        if t.builtin is False or t.kind in ("Job", "CustomResourceDefinition", "Namespace"):
            meta["generation"] = 1
        key = self._key(t, namespace, name)
        with self.store.lock:
            if self.store.objects.get(key) is not None:
                raise already_exists(t.kind_label(), name)
            if dry_run:
                return self._render(t, obj), warnings
            stored = self.store.put(key, obj, "ADDED")
            self.create_counts[key] = self.create_counts.get(key, 0) + 1
        self._after_write(t, stored, None)
        return self._render(t, stored), warnings

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.store.get(("", "namespaces", "", namespace))
        if ns is None:
            raise not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    # ------------------------------------------------------------ admission: defaults + validation
    def update(
        self,
        t: ResourceType,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "",
        require_rv: bool | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        key = self._key(t, namespace, name)
        with self.store.lock:
            old = self.store.get(key)
            if old is None:
                raise not_found(t.kind_label(), name)
            new = copy.deepcopy(body)
            meta = new.setdefault("metadata", {})
            if meta.get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            rv = meta.get("resourceVersion")
            needs_rv = (not t.builtin) if require_rv is None else require_rv
            if rv in (None, "") and needs_rv:
                raise invalid(
                    t.kind,
                    t.group,
                    name,
                    [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
                )
            if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
                raise conflict(t.kind_label(), name)
            new = admission.merge_subresource(t, old, new, subresource)
            meta = new["metadata"]
            for key_ in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ):
                if key_ in old["metadata"]:
                    meta[key_] = old["metadata"][key_]
                else:
                    meta.pop(key_, None)
            meta["name"] = name
            if old["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    raise invalid(
                        t.kind,
                        t.group,
                        name,
                        [
                            (
                                "metadata.finalizers",
                                "Forbidden: no new finalizers can be added if the object is being deleted",
                            )
                        ],
                    )
            warnings = admission.admit(t, new, old, field_validation) if not subresource else []
            if subresource and not t.builtin and t.schema is not None:
                new = admission.admit_status(t, new, old)
            if admission.spec_changed(t, old, new) and "generation" in meta:
                meta["generation"] = int(meta["generation"]) + 1
            if admission.same(old, new):
                return self._render(t, old), warnings  # a no-op write keeps the resourceVersion
            if dry_run:
                return self._render(t, new), warnings
            if (
                meta.get("deletionTimestamp")
                and not meta.get("finalizers")
                and not meta.get("deletionGracePeriodSeconds")
            ):
                stored = self.store.put(key, new, "MODIFIED")
                self.store.remove(key)
                self._after_delete(t, stored)
                return self._render(t, stored), warnings
            stored = self.store.put(key, new, "MODIFIED")
        self._after_write(t, stored, old)
        return self._render(t, stored), warnings

    def patch(
        self,
        t: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "",
    ) -> tuple[dict, list[str]]:
        for _attempt in range(5):
            current = self.get(t, namespace, name)
            if patch_type == "application/merge-patch+json":
                new = json_merge(current, patch)
            elif patch_type == "application/json-patch+json":
                new = json_patch(current, patch)
            elif patch_type == "application/strategic-merge-patch+json":
                if not t.builtin:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "strategic merge patch is not supported for custom "
                        "resources; use a merge patch or a JSON patch",
                    )
                new = strategic_merge(current, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json-patch+json, application/merge-patch+json, "
                    f"application/strategic-merge-patch+json (apply patches are not served: {patch_type})",
                )
            if not isinstance(new, dict):
                raise ApiError(422, "Invalid", "patch did not produce an object")
            new.setdefault("metadata", {})
            # A patch is unconditional unless it carries a resourceVersion itself.
            patched_rv = (
                (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            )
            if patch_type == "application/json-patch+json":
                patched_rv = (
                    new["metadata"].get("resourceVersion")
                    if new["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
                    else None
                )
            if patched_rv is None:
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self.update(
                    t,
                    namespace,
                    name,
                    new,
                    subresource=subresource,
                    dry_run=dry_run,
                    field_validation=field_validation,
                )
            except ApiError as exc:
                if exc.code == 409 and patched_rv is None:
                    continue  # lost a race with another writer: re-apply on the fresh object
                raise
        raise conflict(t.kind_label(), name)

    # ------------------------------------------------------------ delete
    def delete(
        self,
        t: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        options = options or {}
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy is None:
            policy = "Orphan" if t.default_orphan else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                400,
                "BadRequest",
                f"propagationPolicy {policy!r} is not one of Orphan, Background, Foreground",
            )
        key = self._key(t, namespace, name)
        with self.store.lock:
            obj = self.store.get(key)
            if obj is None:
                raise not_found(t.kind_label(), name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                    f"object meta: {obj['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(t.kind_label(), name)
            if dry_run:
                return self._render(t, obj)
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers and self._has_dependents(meta["uid"]):
                finalizers.append("orphan")
            graceful_pod = (
                t.kind == "Pod"
                and (obj.get("spec") or {}).get("nodeName")
                and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and options.get("gracePeriodSeconds") != 0
            )
            if t.kind == "Namespace":
                finalizers = finalizers or []
                obj.setdefault("status", {})["phase"] = "Terminating"
            if finalizers or graceful_pod or t.kind == "Namespace":
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now_iso()
                    meta["deletionGracePeriodSeconds"] = 30 if graceful_pod else 0
                if options.get("gracePeriodSeconds") == 0:
                    meta["deletionGracePeriodSeconds"] = 0
                if (
                    not finalizers
                    and not meta.get("deletionGracePeriodSeconds")
                    and meta.get("deletionTimestamp")
                    and t.kind != "Namespace"
                ):
                    removed = self.store.remove(key)
                    self.gc_wakeup.set()
                    return self._render(t, removed or obj)
                meta["finalizers"] = finalizers
                if not finalizers:
                    meta.pop("finalizers")
                stored = self.store.put(key, obj, "MODIFIED")
                self.gc_wakeup.set()
                return self._render(t, stored)
            removed = self.store.remove(key)
        assert removed is not None
        self._after_delete(t, removed)
        return self._render(t, removed)

    def _has_dependents(self, uid: str) -> bool:
        with self.store.lock:
            return any(
                ref.get("uid") == uid
                for o in self.store.objects.values()
                for ref in o["metadata"].get("ownerReferences") or []
            )

    # ------------------------------------------------------------ hooks
    def _after_write(self, t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if t.kind == "CustomResourceDefinition":
            self.types.register_crd(obj, self.store)
        if t.kind == "ClusterRole":
            rbac.aggregate_cluster_roles(self)
        if t.kind == "Namespace" and old is None:
            # the ServiceAccount and root-CA publisher controllers, done at once
            ns = obj["metadata"]["name"]
            with contextlib.suppress(ApiError):
                self.create(self.type("", "v1", "serviceaccounts"), ns, {"metadata": {"name": "default"}})
            ca = {"metadata": {"name": plugins.ROOT_CA_CONFIGMAP}, "data": {"ca.crt": self.root_ca_pem}}
            with contextlib.suppress(ApiError):
                self.create(self.type("", "v1", "configmaps"), ns, ca)

    def _after_delete(self, t: ResourceType, obj: dict[str, Any]) -> None:
        if t.kind == "CustomResourceDefinition":
            self.types.unregister_crd(obj, self.store)
        if t.kind == "ClusterRole":
            rbac.aggregate_cluster_roles(self)
        self.gc_wakeup.set()
