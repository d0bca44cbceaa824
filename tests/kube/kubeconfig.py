"""Write a kubeconfig that points kubectl, kopf and the Python client at a local server.

The server speaks TLS with its own CA (``certificate-authority``) and authenticates bearer
tokens: the admin token for tests and kubectl, a ServiceAccount's token for the operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def kubeconfig_dict(
    server_url: str, namespace: str = "default", *, token: str, ca_file: str | Path | None = None
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server_url}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "local", "user": {"token": token}}],
        "contexts": [
            {"name": "local", "context": {"cluster": "local", "user": "local", "namespace": namespace}}
        ],
        "current-context": "local",
        "preferences": {},
    }


def write_kubeconfig(
    path: str | Path,
    server_url: str,
    namespace: str = "default",
    *,
    token: str,
    ca_file: str | Path | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = kubeconfig_dict(server_url, namespace, token=token, ca_file=ca_file)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
