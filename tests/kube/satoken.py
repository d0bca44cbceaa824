"""What the kubelet needs to hand a pod its ServiceAccount credentials.

ServiceAccount admission (``apiserver/plugins.py``) adds a projected ``kube-api-access-*``
volume to every pod that automounts a token. The kubelet fills projected volumes from
``PodCredentials``: a token bound to the pod (``serviceAccountToken``, from
``server.token_for``), ConfigMap/Secret items (``kube-root-ca.crt`` → ``ca.crt``) and downward
API items (``namespace``). A container that mounts such a volume at
``/var/run/secrets/kubernetes.io/serviceaccount`` can talk to the API as its ServiceAccount:

- container mode: mount the directory there and set ``KUBERNETES_SERVICE_HOST``/``_PORT``
  (in-cluster config reads the fixed path and verifies ``ca.crt``);
- process mode (no mount namespace, the client cannot find that path): ``kubeconfig_for``
  writes a kubeconfig with the projected token and CA, and the kubelet points ``KUBECONFIG``
  at it — only for containers that mount the volume; others get no credentials at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kube.apiserver.plugins import TOKEN_MOUNT
from tests.kube.kubeconfig import write_kubeconfig

DataLookup = Callable[[str, str, str], "dict[str, str] | None"]  # (plural, namespace, name) -> data


@dataclass(frozen=True)
class PodCredentials:
    server_url: str
    ca_file: Path
    token_for: Callable[..., str]  # LocalApiServer.token_for(namespace, sa, pod=..., ...)

    @classmethod
    def of(cls, server: Any) -> PodCredentials:
        return cls(server.url, Path(server.ca_file), server.token_for)

    def kubeconfig_for(self, mount_dir: Path, namespace: str, path: Path) -> Path:
        """A kubeconfig for a process-mode container from its projected token volume."""
        token = (mount_dir / "token").read_text().strip()
        ca = mount_dir / "ca.crt"
        return write_kubeconfig(
            path, self.server_url, namespace, token=token, ca_file=ca if ca.exists() else self.ca_file
        )


def _field(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
        "spec.nodeName": pod["spec"].get("nodeName"),
    }
    return str(simple.get(path) or "")


def fill_projected(
    credentials: PodCredentials | None,
    pod: dict[str, Any],
    volume: dict[str, Any],
    target: Path,
    data: DataLookup,
) -> None:
    """Write a projected volume's files into ``target`` (mode ``defaultMode``, 0644 by default)."""
    ns = pod["metadata"]["namespace"]
    spec = volume.get("projected") or {}
    mode = int(spec.get("defaultMode", 0o644))
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str, int]] = {}
    for source in spec.get("sources") or []:
        if "serviceAccountToken" in source:
            if credentials is None:
                raise RuntimeError("the kubelet has no credentials source for serviceAccountToken volumes")
            tok = source["serviceAccountToken"]
            audiences = (tok["audience"],) if tok.get("audience") else ()
            token = credentials.token_for(
                ns,
                pod["spec"].get("serviceAccountName") or "default",
                pod=pod,
                expiration_seconds=int(tok.get("expirationSeconds") or 3607),
                **({"audiences": audiences} if audiences else {}),
            )
            files[tok.get("path", "token")] = (token, mode)
        for kind, plural, ref in (("configMap", "configmaps", "name"), ("secret", "secrets", "name")):
            if kind in source:
                src = source[kind]
                values = data(plural, ns, src.get(ref, "")) or {}
                items = src.get("items") or [{"key": k, "path": k} for k in values]
                for item in items:
                    if item["key"] in values:
                        files[item["path"]] = (values[item["key"]], int(item.get("mode", mode)))
                    elif not src.get("optional"):
                        raise RuntimeError(f"configmap references non-existent config key: {item['key']}")
        if "downwardAPI" in source:
            for item in source["downwardAPI"].get("items") or []:
                if "fieldRef" in item:
                    files[item["path"]] = (
                        _field(pod, item["fieldRef"]["fieldPath"]),
                        int(item.get("mode", mode)),
                    )
    for rel, (content, file_mode) in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(file_mode)


def token_mount(container: dict[str, Any]) -> str | None:
    """The volume a container mounts at the ServiceAccount path, if any."""
    for m in container.get("volumeMounts") or []:
        if m.get("mountPath", "").rstrip("/") == TOKEN_MOUNT:
            return m["name"]
    return None
