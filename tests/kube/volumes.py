"""Pod volumes on the local node: one host directory per volume, prepared as the kubelet does.

- ``emptyDir``: a fresh directory, mode 0777 (``medium: Memory``: a tmpfs in container mode);
  ``sizeLimit`` is enforced by eviction (``node.py``).
- ``persistentVolumeClaim``: the claim must exist (else the pod waits in ``ContainerCreating``);
  one directory per claim, created root-owned 0755 with a ``lost+found`` as a freshly formatted
  block volume is, then kept for the claim's lifetime (``pvc_dirs`` maps claim names to
  directories the tests read).
- ``configMap``/``secret``/``downwardAPI``/``projected`` (service-account token, ``ca.crt``,
  namespace): files written with ``defaultMode``/``mode`` (0644), mounted read-only; a missing
  object or key that is not ``optional`` keeps the pod waiting, as ``MountVolume.SetUp failed``.
- ``hostPath``: the path itself, no ownership change.
- ``fsGroup``: the kubelet's SetVolumeOwnership (pkg/volume/volume_linux.go) on every volume type
  that supports ownership management (all of the above but hostPath): group fsGroup, ``g+rw``
  (``g+r`` on read-only volumes), setgid and ``g+x`` on directories; with
  ``fsGroupChangePolicy: OnRootMismatch`` skipped when the root already matches.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.kube.podrules import ConfigError, parse_quantity

RW_MASK, RO_MASK, EXEC_MASK = 0o660, 0o440, 0o110
OWNERSHIP_KINDS = {"emptyDir", "persistentVolumeClaim", "configMap", "secret", "projected", "downwardAPI"}
READ_ONLY_KINDS = {"configMap", "secret", "projected", "downwardAPI"}  # always mounted read-only
DEFAULT_MODE = 0o644


class Sources(Protocol):
    """What volumes are made of, looked up by the kubelet through the API."""

    def data(self, plural: str, namespace: str, name: str) -> dict[str, str] | None: ...

    def exists(self, plural: str, namespace: str, name: str) -> bool: ...

    def claim_dir(self, namespace: str, claim: str) -> Path: ...

    def service_account_token(self, pod: dict[str, Any], source: dict[str, Any]) -> str: ...

    def field(self, pod: dict[str, Any], path: str) -> str: ...


@dataclass
class Volume:
    name: str
    kind: str
    path: Path
    read_only: bool = False  # the volume itself (configMap & co., readOnly claims)
    tmpfs: bool = False
    size_limit: int | None = None
    size_text: str = ""  # sizeLimit as written ("1Gi"), for the eviction message


def _pending(volume: str, message: str) -> ConfigError:
    return ConfigError("ContainerCreating", f'MountVolume.SetUp failed for volume "{volume}" : {message}')


def _kind(vol: dict[str, Any]) -> str:
    return next((k for k in vol if k != "name"), "emptyDir")


def _write_files(root: Path, files: dict[str, tuple[str, int]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, (text, mode) in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)


def _object_files(
    src: Sources, volume: str, kind: str, ref: dict[str, Any], ns: str, default_mode: int
) -> dict[str, tuple[str, int]]:
    plural, name = (
        ("configmaps", ref.get("name", ""))
        if kind == "configMap"
        else ("secrets", ref.get("secretName") or ref.get("name", ""))
    )
    data = src.data(plural, ns, name)
    if data is None:
        if ref.get("optional"):
            return {}
        raise _pending(volume, f'{plural[:-1]} "{name}" not found')
    items = ref.get("items") or [{"key": k, "path": k} for k in sorted(data)]
    out: dict[str, tuple[str, int]] = {}
    for item in items:
        if item["key"] not in data:
            if ref.get("optional"):
                continue
            raise _pending(
                volume,
                f"{'configmap' if kind == 'configMap' else 'secret'} references non-existent config key: {item['key']}",
            )
        out[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return out


def _downward_files(
    src: Sources, pod: dict[str, Any], items: list[dict[str, Any]], default_mode: int
) -> dict[str, tuple[str, int]]:
    out = {}
    for item in items:
        if "fieldRef" in item:
            out[item["path"]] = (
                src.field(pod, item["fieldRef"]["fieldPath"]),
                item.get("mode", default_mode),
            )
    return out


def _projected_files(src: Sources, pod: dict[str, Any], vol: dict[str, Any]) -> dict[str, tuple[str, int]]:
    spec, ns = vol["projected"], pod["metadata"]["namespace"]
    mode = spec.get("defaultMode", DEFAULT_MODE)
    files: dict[str, tuple[str, int]] = {}
    for source in spec.get("sources") or []:
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            files[token.get("path", "token")] = (src.service_account_token(pod, token), mode)
        elif "configMap" in source:  # kube-root-ca.crt: the local API publishes it in every namespace
            files.update(_object_files(src, vol["name"], "configMap", source["configMap"], ns, mode))
        elif "secret" in source:
            files.update(_object_files(src, vol["name"], "secret", source["secret"], ns, mode))
        elif "downwardAPI" in source:
            files.update(_downward_files(src, pod, source["downwardAPI"].get("items") or [], mode))
    return files


def prepare(pod: dict[str, Any], pod_dir: Path, src: Sources) -> dict[str, Volume]:
    """Create every volume of ``pod`` on the host (raises ConfigError while one cannot be set up)."""
    ns = pod["metadata"]["namespace"]
    sec = pod["spec"].get("securityContext") or {}
    out: dict[str, Volume] = {}
    for vol in pod["spec"].get("volumes") or []:
        name, kind = vol["name"], _kind(vol)
        path = pod_dir / "volumes" / name
        volume = Volume(name, kind, path, read_only=kind in READ_ONLY_KINDS)
        if kind == "persistentVolumeClaim":
            claim = vol[kind]["claimName"]
            if not src.exists("persistentvolumeclaims", ns, claim):
                raise ConfigError(
                    "ContainerCreating",
                    f'persistentvolumeclaim "{claim}" not found (the pod stays Pending until the claim exists)',
                )
            volume.path = src.claim_dir(ns, claim)
            volume.read_only = bool(vol[kind].get("readOnly"))
        elif kind == "hostPath":
            volume.path = Path(vol[kind]["path"])
        elif kind == "emptyDir":
            spec = vol[kind] or {}
            volume.tmpfs = spec.get("medium") == "Memory"
            if spec.get("sizeLimit") is not None:
                volume.size_limit = int(parse_quantity(spec["sizeLimit"]))
                volume.size_text = str(spec["sizeLimit"])
            if not path.exists():
                path.mkdir(parents=True)
                os.chmod(path, 0o777)
        elif kind in ("configMap", "secret"):
            mode = vol[kind].get("defaultMode", DEFAULT_MODE)
            _write_files(path, _object_files(src, name, kind, vol[kind], ns, mode))
        elif kind == "downwardAPI":
            mode = vol[kind].get("defaultMode", DEFAULT_MODE)
            _write_files(path, _downward_files(src, pod, vol[kind].get("items") or [], mode))
        elif kind == "projected":
            _write_files(path, _projected_files(src, pod, vol))
        else:
            raise ConfigError(
                "CreateContainerConfigError",
                f'volume "{name}": {kind} volumes are not supported by the local node',
            )
        if kind in OWNERSHIP_KINDS and sec.get("fsGroup") is not None:
            set_volume_ownership(
                volume.path, int(sec["fsGroup"]), sec.get("fsGroupChangePolicy") or "Always", volume.read_only
            )
        out[name] = volume
    return out


def new_claim_dir(path: Path) -> Path:
    """A claim's directory as a freshly formatted ext4 volume looks: root:root 0755, lost+found 0700."""
    if not path.exists():
        path.mkdir(parents=True)
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)
        (path / "lost+found").mkdir(mode=0o700)
    return path


def sub_path(volume_path: Path, sub: str) -> Path:
    """kubelet SafeMakeDir: a missing subPath is created root-owned with the volume root's mode."""
    target = volume_path / sub
    if not target.exists():
        mode = stat.S_IMODE(volume_path.stat().st_mode)
        target.mkdir(parents=True)
        os.chmod(target, mode)
    return target


def _requires_change(root: Path, fs_group: int, read_only: bool) -> bool:
    st = root.lstat()
    if st.st_gid != fs_group or not stat.S_ISDIR(st.st_mode):
        return True
    want = (RO_MASK if read_only else RW_MASK) | EXEC_MASK
    return (stat.S_IMODE(st.st_mode) & want) != want or not st.st_mode & stat.S_ISGID


def _change(path: Path, fs_group: int, read_only: bool) -> None:
    st = path.lstat()
    os.lchown(path, -1, fs_group)
    if stat.S_ISLNK(st.st_mode):
        return
    mask = RO_MASK if read_only else RW_MASK
    if stat.S_ISDIR(st.st_mode):
        mask |= stat.S_ISGID | EXEC_MASK
    os.chmod(path, stat.S_IMODE(st.st_mode) | mask)


def set_volume_ownership(root: Path, fs_group: int, policy: str, read_only: bool) -> None:
    if policy == "OnRootMismatch" and not _requires_change(root, fs_group, read_only):
        return
    _change(root, fs_group, read_only)
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            _change(Path(dirpath) / entry, fs_group, read_only)
