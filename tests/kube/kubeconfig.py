"""Write a kubeconfig that points kubectl, kopf and the Python client at a local server."""

from __future__ import annotations

from pathlib import Path

import yaml


def kubeconfig_dict(server_url: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server_url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "local", "user": {"token": "local-test-token"}}],
        "contexts": [
            {"name": "local", "context": {"cluster": "local", "user": "local", "namespace": namespace}}
        ],
        "current-context": "local",
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, server_url: str, namespace: str = "default") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig_dict(server_url, namespace), sort_keys=False))
    return path
