"""``benchcal publisher``: the evaluator pods' native sidecar, the only container with a token.

It publishes the summary the evaluator leaves in the shared outbox (``benchcal.outbox``) to the
one ConfigMap it is given (``benchcal.publish.patch_summary``), and stops on SIGTERM after a last
pass. It runs from the operator's image: no torch, no checkpoint code, no code samples.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from benchcal.outbox import serve
from benchcal.publish import patch_summary, split_target

log = logging.getLogger("benchcal.publisher")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outbox", required=True, type=Path, help="the directory shared with the evaluator")
    parser.add_argument(
        "--configmap", required=True, metavar="NAMESPACE/NAME", help="the one ConfigMap to publish to"
    )


def run(args: argparse.Namespace) -> int:
    namespace, name = split_target(args.configmap, "--configmap")
    args.outbox.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("publishing %s/%s from %s", namespace, name, args.outbox)
    serve(args.outbox, name, lambda text: patch_summary(namespace, name, text), stop)
    return 0
