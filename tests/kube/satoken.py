"""What the kubelet needs to hand a pod its ServiceAccount credentials.

ServiceAccount admission (``apiserver/plugins.py``) adds a projected ``kube-api-access-*``
volume to every pod that automounts a token. The kubelet fills projected volumes
(``volumes.py``) with a token bound to the pod (``serviceAccountToken``, from
``PodCredentials.token_for`` = ``server.token_for``), ConfigMap/Secret items
(``kube-root-ca.crt`` → ``ca.crt``) and downward API items (``namespace``). A container that mounts such a volume at
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


def token_mount(container: dict[str, Any]) -> str | None:
    """The volume a container mounts at the ServiceAccount path, if any."""
    for m in container.get("volumeMounts") or []:
        if m.get("mountPath", "").rstrip("/") == TOKEN_MOUNT:
            return m["name"]
    return None
