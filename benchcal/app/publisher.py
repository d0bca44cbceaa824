"""``benchcal publish``: the publisher sidecar of an evaluator pod (the only container with a token).

It watches the outbox (``benchcal.outbox``) for the evaluator's ``summary.json``, publishes it
with ``benchcal.publish.publish_summary`` (create, or replace when it exists) and answers with
``ack.json`` or ``error.json`` (the API server's message and the evaluator's exit code: 2 for a
refusal it cannot get past by retrying — 401/403/404/422 —, 1 otherwise). Transient failures
(5xx, connection errors) are retried for ``--retry-seconds``. It runs until SIGTERM (the kubelet
sends it once the evaluator has exited) and then makes one last pass over the outbox, so a
summary written just before is still published.

It runs in the reducer image (benchcal with the kubernetes client, nothing that runs user code)
and reads only data from the outbox: never a symlink, never more than ``outbox.MAX_BYTES``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from benchcal import outbox
from benchcal.errors import EXIT_BAD_INPUT, EXIT_CRASH, EXIT_OK, BadInput
from benchcal.publish import publish_summary, server_message, split_target
from benchcal.results import CheckpointSummary

log = logging.getLogger("benchcal.publish")
TRANSIENT_RETRY_INTERVAL = 2.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outbox", required=True, type=Path, help="directory shared with the evaluator")
    p.add_argument("--configmap", required=True, metavar="NAMESPACE/NAME", help="ConfigMap to publish to")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between looks at the outbox")
    p.add_argument(
        "--retry-seconds", type=float, default=60.0, help="how long transient API errors are retried"
    )


def _answer(box: Path, name: str, doc: dict[str, Any]) -> None:
    outbox.write_atomic(box / name, json.dumps(doc, sort_keys=True).encode())


def publish_once(box: Path, raw: bytes, target: str, retry_seconds: float, stop: threading.Event) -> bool:
    """Publish one summary and write the answer; True when it was published."""
    sha = outbox.digest(raw)
    where = f"{box / outbox.SUMMARY}"
    try:
        try:
            summary = CheckpointSummary.from_dict(json.loads(raw), where)
        except ValueError as exc:
            raise BadInput(f"{where}: not a CheckpointSummary: {exc}") from None
        deadline = time.monotonic() + retry_seconds
        while True:
            try:
                publish_summary(summary, target)
                break
            except BadInput:
                raise
            except Exception as exc:  # 5xx, 409 races, connection refused: the API may come back
                if time.monotonic() >= deadline or stop.is_set():
                    raise
                log.warning("publishing to ConfigMap %s failed, retrying: %s", target, server_message(exc))
                stop.wait(TRANSIENT_RETRY_INTERVAL)
    except BadInput as exc:
        log.error("not published: %s", exc)
        _answer(box, outbox.ERROR, {"sha256": sha, "exit_code": EXIT_BAD_INPUT, "message": str(exc)})
        return False
    except Exception as exc:
        message = f"publish ConfigMap {target}: {server_message(exc)}"
        log.error("not published: %s", message)
        _answer(box, outbox.ERROR, {"sha256": sha, "exit_code": EXIT_CRASH, "message": message})
        return False
    _answer(box, outbox.ACK, {"sha256": sha, "configmap": target})
    log.info("published summary of checkpoint %s to ConfigMap %s", summary.checkpoint, target)
    return True


def run(args: argparse.Namespace) -> int:
    split_target(args.configmap, "--configmap")
    box: Path = args.outbox
    if not box.is_dir():
        raise BadInput(f"--outbox {box}: not a directory (the evaluator pod's outbox emptyDir)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    answered = ""
    log.info("publisher: watching %s for the summary of ConfigMap %s", box, args.configmap)
    while True:
        last_pass = stop.is_set()  # after SIGTERM: one more look, then exit
        raw = outbox.read_regular(box / outbox.SUMMARY)
        if raw is not None and outbox.digest(raw) != answered:
            answered = outbox.digest(raw)
            publish_once(box, raw, args.configmap, args.retry_seconds, stop)
        if last_pass:
            return EXIT_OK
        stop.wait(args.poll)
