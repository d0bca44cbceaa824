"""Container statuses as the kubelet reports them: running, terminated (exit code, reason, the
termination message or, with FallbackToLogsOnError, the log's tail), waiting (a ConfigError's
reason, or PodInitializing for what has not started yet)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.kube.podrules import ConfigError
from tests.kube.runningpod import RunningContainer, RunningPod

MAX_MESSAGE = 4096  # kubelet: bytes of the termination-message file
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048  # kubelet: log tail used by FallbackToLogsOnError


def container_status(c: RunningContainer, image: str) -> dict[str, Any]:
    code = c.poll()
    base = {
        "name": c.name,
        "image": image,
        "imageID": c.handle.image_id,
        "restartCount": c.restart_count,
        "started": code is None,
        "ready": code is None,
        "containerID": c.handle.container_id,
    }
    if code is None:
        return {**base, "state": {"running": {"startedAt": c.started}}}
    message = _tail(c.termination_path, MAX_MESSAGE) if c.termination_path.exists() else ""
    if not message and code != 0 and c.policy == "FallbackToLogsOnError" and c.log_path.exists():
        lines = c.log_path.read_text(errors="replace").splitlines()[-FALLBACK_LINES:]
        message = "\n".join(lines)[-FALLBACK_BYTES:]
    reason = c.handle.reason
    term = {
        "exitCode": 128 if reason == "StartError" else code,
        "reason": reason,
        "startedAt": c.started,
        "finishedAt": now(),
        "containerID": base["containerID"],
    }
    if message:
        term["message"] = message
    return {**base, "state": {"terminated": term}}


def statuses(pod: dict[str, Any], running: RunningPod) -> dict[str, list[dict[str, Any]]]:
    """``initContainerStatuses`` (when the pod has any) and ``containerStatuses``; what has
    not started yet is waiting in PodInitializing."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, specs, started in (
        ("initContainerStatuses", pod["spec"].get("initContainers") or [], running.init_containers),
        ("containerStatuses", pod["spec"]["containers"], running.containers),
    ):
        if not specs:
            continue
        rows = [container_status(c, s.get("image", "")) for c, s in zip(started, specs, strict=False)]
        for s in specs[len(started) :]:
            row = waiting_status(s, ConfigError("PodInitializing", ""))
            row["state"]["waiting"].pop("message")
            rows.append(row)
        out[key] = rows
    return out


def waiting_status(container: dict[str, Any], error: ConfigError) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "restartCount": 0,
        "started": False,
        "ready": False,
        "state": {"waiting": {"reason": error.reason, "message": error.message}},
    }


def _tail(path: Path, limit: int) -> str:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read().decode(errors="replace")


def now() -> str:
    """A status timestamp (RFC 3339, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
