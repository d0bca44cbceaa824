"""The evaluator and reducer pods' fixed layout, and the checks of what a run adds to it.

The operator owns a few paths in every pod (scratch, shared memory, results, model, and the
ServiceAccount token Kubernetes mounts); ``spec.evaluator`` may add
volumes, mounts, tolerations and resources. Everything here that the API server would refuse
with a 422 on Job or pod creation (duplicate names or mount paths, a mount over one of the
operator's, a toleration ``Exists`` with a value, extended-resource requests that differ from
limits) or that Pod Security "restricted" would refuse at pod creation (hostPath and other
volume types) is refused first, as ``BadInput`` naming the field, so the run says
``Accepted=False`` instead of retrying a create that can never succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchcal.errors import BadInput

# ---- paths the operator mounts in its pods --------------------------------------------------------
TMP_MOUNT = "/tmp"  # emptyDir (sizeLimit spec.evaluator.scratchSize): HF cache, Triton cache, HOME
SHM_MOUNT = "/dev/shm"  # memory-backed emptyDir for PyTorch
BENCHCAL_ROOT = "/benchcal"
RESULTS_MOUNT = f"{BENCHCAL_ROOT}/results"
MODEL_MOUNT = f"{BENCHCAL_ROOT}/model"
OUTBOX_MOUNT = f"{BENCHCAL_ROOT}/outbox"  # emptyDir: evaluator -> publisher sidecar (benchcal.outbox)
OUTBOX_SIZE = "16Mi"
# where in-cluster clients look for the ServiceAccount token; only the publisher mounts it
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607  # what ServiceAccount admission sets; the kubelet rotates it
TERMINATION_LOG = "/dev/termination-log"
RESERVED_VOLUME_PREFIX = "benchcal-"
# a user mount must not equal these, nor lie under the prefixes
RESERVED_MOUNTS = (TMP_MOUNT, SHM_MOUNT, TERMINATION_LOG)
RESERVED_PREFIXES = (BENCHCAL_ROOT, "/var/run/secrets/kubernetes.io")

# Volume sources Pod Security "restricted" admits (and hostPath, nfs, ... it refuses).
ALLOWED_VOLUME_SOURCES = (
    "persistentVolumeClaim",
    "emptyDir",
    "configMap",
    "secret",
    "csi",
    "ephemeral",
    "downwardAPI",
    "projected",
)
_KUBERNETES_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage")


def service_account_token_volume(name: str) -> dict[str, Any]:
    """The projected volume ServiceAccount admission would add (token, cluster CA, namespace),
    declared by the operator so that it can be mounted in one container only."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
            ],
        },
    }


def _clean(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def mount_conflict(path: str) -> str:
    """What an operator-owned path ``path`` collides with ('' if none)."""
    clean = _clean(path)
    if clean in RESERVED_MOUNTS:
        return f"{clean} is mounted by the operator"
    for prefix in RESERVED_PREFIXES:
        if clean == prefix or clean.startswith(prefix + "/"):
            return f"{prefix} and everything under it belong to the operator"
    return ""


def _volume_errors(i: int, vol: Mapping[str, Any]) -> str:
    where = f"spec.evaluator.volumes[{i}]"
    if vol["name"].startswith(RESERVED_VOLUME_PREFIX):
        return f"{where}.name: the prefix {RESERVED_VOLUME_PREFIX!r} is reserved for the operator"
    sources = [k for k in vol if k != "name"]
    if len(sources) != 1:
        return f"{where}: set exactly one volume source (got {', '.join(sources) or 'none'})"
    (source,) = sources
    if source not in ALLOWED_VOLUME_SOURCES:
        return (
            f"{where}.{source}: volume type not allowed (Pod Security 'restricted' admits only "
            f"{', '.join(ALLOWED_VOLUME_SOURCES)})"
        )
    for j, src in enumerate((vol.get("projected") or {}).get("sources") or []):
        if "serviceAccountToken" in src:
            # checkpoint code runs where this would be mounted: only the publisher sidecar gets a token
            return (
                f"{where}.projected.sources[{j}].serviceAccountToken: not allowed; the evaluator "
                "container gets no Kubernetes credentials (docs/operations.md, Security: threat model)"
            )
    return ""


def _check_resources(resources: Mapping[str, Any]) -> None:
    """Extended resources (nvidia.com/gpu, ...) cannot be overcommitted: requests == limits."""
    limits = resources.get("limits") or {}
    for name, value in (resources.get("requests") or {}).items():
        if "/" not in name or name.split("/")[0].endswith("kubernetes.io") or name in _KUBERNETES_RESOURCES:
            continue
        where = f"spec.evaluator.resources.requests[{name}]"
        if name not in limits:
            raise BadInput(
                f"{where}: {name} is not overcommittable: set limits[{name}] too (requests = limits)"
            )
        if str(limits[name]) != str(value):
            raise BadInput(f"{where}: must equal limits[{name}] ({limits[name]}), got {value}")


def check_evaluator_pod(ev: Mapping[str, Any]) -> None:
    """Raise BadInput for the first thing in ``spec.evaluator`` the API server would refuse."""
    names: dict[str, int] = {}
    for i, vol in enumerate(ev.get("volumes") or []):
        if vol["name"] in names:
            raise BadInput(
                f"spec.evaluator.volumes[{i}].name: {vol['name']!r} is already used by "
                f"spec.evaluator.volumes[{names[vol['name']]}]"
            )
        names[vol["name"]] = i
        error = _volume_errors(i, vol)
        if error:
            raise BadInput(error)
    paths: dict[str, int] = {}
    for i, mount in enumerate(ev.get("volumeMounts") or []):
        where = f"spec.evaluator.volumeMounts[{i}]"
        if mount["name"] not in names:
            raise BadInput(f"{where}.name: no volume {mount['name']!r} in spec.evaluator.volumes")
        path = mount["mountPath"]
        if not path.startswith("/"):
            raise BadInput(f"{where}.mountPath: must be an absolute path, got {path!r}")
        conflict = mount_conflict(path)
        if conflict:
            raise BadInput(f"{where}.mountPath: {path!r}: {conflict}; mount it elsewhere")
        clean = _clean(path)
        if clean in paths:
            raise BadInput(
                f"{where}.mountPath: {path!r} is already used by spec.evaluator.volumeMounts[{paths[clean]}]"
            )
        paths[clean] = i
    for i, tol in enumerate(ev.get("tolerations") or []):
        if tol.get("operator") == "Exists" and tol.get("value"):
            raise BadInput(f"spec.evaluator.tolerations[{i}].value: must be empty when operator is Exists")
    _check_resources(ev.get("resources") or {})
