"""The e2e harness itself: a test whose operator died fails at once, with the operator's log,
instead of waiting out its timeout and reporting an unrelated condition."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.harness import E2E, OperatorExited, wait_until

pytestmark = [pytest.mark.e2e]


def _operator_up(e2e: E2E) -> None:
    wait_until(lambda: "operator start #1" in e2e.operator.log(), 30, "the operator's first log line")


def test_a_crashed_operator_ends_every_wait_at_once(e2e: E2E) -> None:
    _operator_up(e2e)
    assert e2e.operator.proc is not None
    os.killpg(e2e.operator.proc.pid, signal.SIGKILL)  # behind the harness's back, as a crash would
    e2e.operator.proc.wait(10)
    started = time.monotonic()
    with pytest.raises(OperatorExited, match=r"exited with status -9 while the test waited") as caught:
        wait_until(lambda: False, 300, "something the operator would have done")
    assert time.monotonic() - started < 30  # not the 300 s timeout
    assert "operator log (tail)" in str(caught.value) and "operator start #1" in str(caught.value)


def test_a_crashed_operator_ends_a_phase_wait_too(e2e: E2E) -> None:
    _operator_up(e2e)
    assert e2e.operator.proc is not None
    os.killpg(e2e.operator.proc.pid, signal.SIGKILL)
    e2e.operator.proc.wait(10)
    with pytest.raises(OperatorExited):
        e2e.wait_phase("never-created", timeout=300)


def test_an_operator_the_test_killed_on_purpose_is_not_a_crash(e2e: E2E) -> None:
    _operator_up(e2e)
    e2e.operator.kill()  # as test_faults does before restarting it
    with pytest.raises(AssertionError, match="timed out after 1s") as caught:
        wait_until(lambda: False, 1, "nothing")
    assert not isinstance(caught.value, OperatorExited)
    e2e.operator.start()
    wait_until(lambda: "operator start #2" in e2e.operator.log(), 30, "the restart")
