"""The evaluator side of the outbox handshake: an answer counts only for the summary it answers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from benchcal import outbox
from benchcal.errors import EXIT_BAD_INPUT, EXIT_CRASH


def _answer_later(box: Path, name: str, doc: dict, delay: float = 0.3) -> threading.Thread:
    def answer() -> None:
        while not (box / outbox.SUMMARY).exists():
            threading.Event().wait(0.05)
        sha = outbox.digest((box / outbox.SUMMARY).read_bytes())
        threading.Event().wait(delay)
        outbox.write_atomic(box / name, json.dumps({"sha256": sha, **doc}).encode())

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    return t


def test_deliver_returns_once_the_publisher_acknowledged_this_summary(tmp_path: Path) -> None:
    # a stale ack (another summary's) is there already: it must not count
    (tmp_path / outbox.ACK).write_text(json.dumps({"sha256": "0" * 64, "configmap": "ns/old"}))
    _answer_later(tmp_path, outbox.ACK, {"configmap": "ns/new"})
    assert outbox.deliver(tmp_path, {"checkpoint": "s1"}, timeout=10) == "published to ConfigMap ns/new"
    assert json.loads((tmp_path / outbox.SUMMARY).read_text()) == {"checkpoint": "s1"}


def test_a_refusal_carries_the_exit_code_and_the_servers_message(tmp_path: Path) -> None:
    message = 'configmaps "x" is forbidden: User "system:serviceaccount:ml:job" cannot create resource'
    _answer_later(tmp_path, outbox.ERROR, {"exit_code": EXIT_BAD_INPUT, "message": message})
    with pytest.raises(outbox.PublishFailed) as failed:
        outbox.deliver(tmp_path, {"checkpoint": "s1"}, timeout=10)
    assert failed.value.exit_code == EXIT_BAD_INPUT
    assert failed.value.message == f"the summary was not published: {message}"


def test_no_answer_is_a_failure_naming_the_publisher(tmp_path: Path) -> None:
    with pytest.raises(outbox.PublishFailed) as failed:
        outbox.deliver(tmp_path, {"checkpoint": "s1"}, timeout=0.5, poll=0.1)
    assert failed.value.exit_code == EXIT_CRASH
    assert "no answer from the publisher sidecar within 0s" in failed.value.message
    assert "kubectl logs POD -c publisher" in failed.value.message


def test_symlinks_and_oversized_files_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("eyJhbGciOiJSUzI1NiJ9.secret")
    os.symlink(secret, tmp_path / outbox.SUMMARY)
    assert outbox.read_regular(tmp_path / outbox.SUMMARY) is None  # the publisher would not follow it
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    assert outbox.read_regular(big, limit=10) is None
    assert outbox.read_regular(big, limit=11) == b"x" * 11
    # writing replaces a planted symlink instead of writing through it
    outbox.write_atomic(tmp_path / outbox.SUMMARY, b"{}")
    assert not (tmp_path / outbox.SUMMARY).is_symlink() and secret.read_text().endswith("secret")
