"""A real S3-protocol server for tests: moto's standalone server (PyPI ``moto[server]``), started
as a subprocess on a free port, with the environment s3fs/botocore read (``AWS_ENDPOINT_URL``,
static test credentials) as a dict the tests put into ``os.environ`` or a child's env."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "benchcal-test",
            "AWS_SECRET_ACCESS_KEY": "benchcal-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.kill()
        proc.wait()
