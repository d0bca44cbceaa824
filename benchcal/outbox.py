"""The file handshake between an evaluator and its publisher sidecar (one shared emptyDir).

The evaluator runs checkpoint code and code-eval samples, so its pod container has no
Kubernetes credentials; the publisher (``benchcal publish``, a native sidecar that alone mounts
the ServiceAccount token) does the API call. In the outbox directory:

- ``summary.json``: the evaluator's CheckpointSummary, written atomically (temp file + rename);
- ``ack.json``: the publisher's ``{"sha256": <of summary.json>, "configmap": NS/NAME}`` once the
  ConfigMap holds exactly that summary;
- ``error.json``: ``{"sha256", "exit_code", "message"}`` when publishing failed (``exit_code``
  from ``benchcal.errors``: 2 for what the API server refused, 1 otherwise; ``message`` the API
  server's words).

An answer counts only when its ``sha256`` is that of the summary the evaluator wrote, so a stale
one never acknowledges a newer summary. Files are read without following symlinks and only when
regular and small: the evaluator side is untrusted, and the publisher holds the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchcal.errors import EXIT_CRASH

SUMMARY = "summary.json"
ACK = "ack.json"
ERROR = "error.json"
MAX_BYTES = 2_000_000  # a summary larger than a ConfigMap can hold is refused by the publisher anyway
DEFAULT_TIMEOUT = 300.0  # seconds an evaluator waits for its publisher's answer


class PublishFailed(Exception):
    """The summary was not published; ``exit_code`` is the evaluator's exit code."""

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


@dataclass(frozen=True)
class Answer:
    ok: bool
    exit_code: int
    message: str


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_regular(path: Path, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink) of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return f.read(limit + 1)[:limit]


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file (O_EXCL, random name) then rename: a reader never sees half a file, and a
    symlink planted at ``path`` is replaced, never followed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def answer_for(outbox: Path, sha256: str) -> Answer | None:
    """The publisher's answer to the summary with ``sha256``, if it has answered."""
    for name, ok in ((ACK, True), (ERROR, False)):
        raw = read_regular(outbox / name)
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("sha256") != sha256:
            continue
        if ok:
            return Answer(True, 0, f"published to ConfigMap {doc.get('configmap', '?')}")
        code = doc.get("exit_code")
        return Answer(
            False, code if isinstance(code, int) and code > 0 else EXIT_CRASH, str(doc.get("message"))
        )
    return None


def deliver(
    outbox: Path, summary: dict[str, Any], timeout: float = DEFAULT_TIMEOUT, poll: float = 0.2
) -> str:
    """Hand ``summary`` to the publisher and wait for its answer; the ack's text on success.

    Raises PublishFailed with the publisher's exit code and message, or EXIT_CRASH when no
    answer came within ``timeout`` seconds (a publisher that is not running)."""
    outbox = Path(outbox)
    data = json.dumps(summary, sort_keys=True, separators=(",", ":")).encode()
    sha = digest(data)
    write_atomic(outbox / SUMMARY, data)
    deadline = time.monotonic() + timeout
    while True:
        answer = answer_for(outbox, sha)
        if answer is not None:
            if not answer.ok:
                raise PublishFailed(answer.exit_code, f"the summary was not published: {answer.message}")
            return answer.message
        if time.monotonic() >= deadline:
            raise PublishFailed(
                EXIT_CRASH,
                f"the summary was not published: no answer from the publisher sidecar within {timeout:.0f}s "
                f"(outbox {outbox}; see its log: kubectl logs POD -c publisher)",
            )
        time.sleep(poll)
