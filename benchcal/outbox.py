"""The hand-over of a summary from the evaluator to the publisher sidecar, through files.

The evaluator container has no Kubernetes credentials (it runs checkpoint code and code
samples); the publisher, a native sidecar in the operator's image, has the run's token and
nothing else to do. They share one emptyDir, the *outbox* (``$BENCHCAL_OUTBOX``):

1. the evaluator writes ``<outbox>/<configmap>.json`` atomically (temporary file + rename), then
   waits for ``<configmap>.receipt.json`` naming the same sha256;
2. the publisher (``benchcal publisher --outbox DIR --configmap NS/NAME``) publishes exactly that
   file to exactly its one ConfigMap, retrying transient API errors, and writes the receipt:
   ``{"sha256", "ok", "error", "permanent"}``;
3. the evaluator exits 0 only after an ``ok`` receipt; a permanent refusal (403, 404, 422) is bad
   input (exit 2: the Job fails at once, with the server's words in its termination message); no
   receipt within ``timeout`` is a crash (exit 1: retried, and the retry resumes).

The publisher stops on SIGTERM (sent after the evaluator exits, or on preemption), after one last
pass over the outbox. Nothing here imports the kubernetes client: ``publish_fn`` does the API call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchcal.errors import BadInput

log = logging.getLogger("benchcal.publisher")

HAND_OVER_TIMEOUT = 180.0  # the publisher retries for up to a minute and a half (RETRY_DELAYS)
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)
POLL_SECONDS = 0.5


class PublishError(Exception):
    def __init__(self, message: str, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


def summary_path(outbox: Path, configmap: str) -> Path:
    return outbox / f"{configmap}.json"


def receipt_path(outbox: Path, configmap: str) -> Path:
    return outbox / f"{configmap}.receipt.json"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def hand_over(text: str, outbox: Path, configmap: str, timeout: float = HAND_OVER_TIMEOUT) -> None:
    """Evaluator side: leave the summary for the publisher and wait for its receipt."""
    digest = _digest(text)
    receipt = receipt_path(outbox, configmap)
    receipt.unlink(missing_ok=True)
    _write_atomically(summary_path(outbox, configmap), text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = json.loads(receipt.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(POLL_SECONDS)
            continue
        if got.get("sha256") != digest:
            time.sleep(POLL_SECONDS)
            continue
        if got.get("ok"):
            return
        message = f"publishing the summary to ConfigMap {configmap} failed: {got.get('error', '?')}"
        raise BadInput(message) if got.get("permanent") else RuntimeError(message)
    raise RuntimeError(
        f"no receipt from the publisher sidecar for ConfigMap {configmap} within {timeout:.0f}s "
        f"(outbox {outbox}); see the pod's 'publisher' container log"
    )


def publish_pending(
    outbox: Path,
    configmap: str,
    publish_fn: Callable[[str], None],
    published: dict[str, str],
    sleep=time.sleep,
) -> bool:
    """Publisher side, one pass: publish the summary if it is new; True if a receipt was written."""
    path = summary_path(outbox, configmap)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    digest = _digest(text)
    if published.get(configmap) == digest:
        return False
    receipt: dict[str, object] = {"sha256": digest, "ok": True}
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            publish_fn(text)
            log.info("published %s (%d bytes, sha256 %s)", configmap, len(text), digest[:12])
            break
        except PublishError as exc:
            if exc.permanent or delay is None:
                receipt = {"sha256": digest, "ok": False, "error": str(exc), "permanent": exc.permanent}
                log.error("publishing %s failed (attempt %d): %s", configmap, attempt + 1, exc)
                break
            log.warning(
                "publishing %s failed (attempt %d, retrying in %.0fs): %s", configmap, attempt + 1, delay, exc
            )
            sleep(delay)
    _write_atomically(receipt_path(outbox, configmap), json.dumps(receipt))
    published[configmap] = digest
    return True


def serve(outbox: Path, configmap: str, publish_fn: Callable[[str], None], stop: threading.Event) -> None:
    """Publish whatever the evaluator leaves until ``stop``, then one last pass."""
    published: dict[str, str] = {}
    while not stop.is_set():
        publish_pending(outbox, configmap, publish_fn, published)
        stop.wait(POLL_SECONDS)
    publish_pending(outbox, configmap, publish_fn, published)
