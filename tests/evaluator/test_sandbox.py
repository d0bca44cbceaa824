"""The code sandbox: misbehaving completions are failed samples with a reason, never a crash."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from benchcal_eval.requests import CodeSpec
from benchcal_eval.sandbox import Limits, check_completion, isolation_prefix, run_program, truncate_completion

ADD = CodeSpec(
    task_id="t/0",
    prompt="def add(a, b):\n",
    entry_point="add",
    test="",
    test_inputs=("(1, 2)", "(-3, 3)"),
    test_outputs=("3", "0"),
)
FAST = Limits(timeout_s=3.0, memory_mb=512)


def check(body: str, spec: CodeSpec = ADD, limits: Limits = FAST):
    return check_completion(spec, body, limits)


def test_correct_completion_passes():
    result = check("    return a + b\n")
    assert result.passed and result.reason == "passed"


def test_wrong_answer_fails_with_the_test_named():
    result = check("    return a - b\n")
    assert not result.passed
    assert "wrong answer" in result.reason and "test 0" in result.reason


def test_completion_is_cut_at_the_end_of_the_function():
    assert truncate_completion("    return 1\n\ndef other():\n    pass\n") == "    return 1\n"
    assert truncate_completion("    return 1\n#comment") == "    return 1"
    # Top-level code after the body (here an infinite loop) is never run.
    assert check("    return a + b\nwhile True:\n    pass\n").passed


def test_infinite_loop_times_out_and_is_killed():
    start = time.monotonic()
    result = check("    while True:\n        pass\n", limits=Limits(timeout_s=1.0, memory_mb=512))
    assert not result.passed and result.reason.startswith("timeout")
    assert time.monotonic() - start < 10


def test_sleeping_forever_times_out():
    result = check("    import time\n    time.sleep(60)\n", limits=Limits(timeout_s=1.0, memory_mb=512))
    assert not result.passed and result.reason.startswith("timeout")


def test_allocating_too_much_memory_fails():
    result = check("    x = bytearray(4 * 1024 ** 3)\n    return a + b\n")
    assert not result.passed and result.reason.startswith("memory")


def test_exiting_early_with_success_code_does_not_pass():
    result = check("    import os\n    os._exit(0)\n")
    assert not result.passed and "before finishing" in result.reason
    result = check("    raise SystemExit(0)\n")
    assert not result.passed


def test_exceptions_and_crashes_are_failures():
    assert check("    raise ValueError('boom')\n").reason.startswith("error")
    assert not check("    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n").passed
    assert check("    return a +\n").reason.startswith("error")  # syntax error


def test_files_written_stay_in_a_fresh_temporary_directory():
    body = (
        "    import os\n"
        "    existed = os.path.exists('left_behind.txt')\n"
        "    open('left_behind.txt', 'w').write('x')\n"
        "    return -1 if existed else a + b\n"
    )
    # Two tests per run: the second call sees the first one's file, so the run fails...
    assert not check(body).passed
    # ...but a run with a single test passes every time: each run starts in an empty directory.
    one = CodeSpec("t/3", ADD.prompt, "add", "", ("(1, 2)",), ("3",))
    assert check(body, one).passed and check(body, one).passed
    assert not Path("left_behind.txt").exists()


def test_writing_a_huge_file_is_stopped():
    body = "    open('big', 'wb').write(b'x' * (64 << 20))\n    return a + b\n"
    result = check(body, limits=Limits(timeout_s=5.0, memory_mb=512, output_bytes=1 << 20))
    assert not result.passed and result.reason.startswith("output_limit")


def test_garbage_output_is_captured_safely(tmp_path):
    outcome = run_program(
        ["/bin/sh", "-c", "head -c 100000 /dev/urandom; head -c 5000000 /dev/zero >&2"],
        tmp_path,
        Limits(timeout_s=5.0, memory_mb=512, output_bytes=1 << 20),
    )
    assert outcome.status == "output_limit"
    assert isinstance(outcome.stdout, str) and len(outcome.stderr) <= 1 << 20
    # Printing garbage and then returning the right answer still passes.
    assert check("    print('\\x00\\xff' * 1000)\n    return a + b\n").passed


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("BENCHCAL_SECRET", "hunter2")
    body = "    import os\n    return a + b if 'BENCHCAL_SECRET' not in os.environ else -1\n"
    assert check(body).passed


def test_background_children_are_killed(tmp_path):
    marker = tmp_path / "alive"
    body = (
        "    import subprocess, sys\n"
        f"    subprocess.Popen(['/bin/sh', '-c', 'sleep 2; touch {marker}'])\n"
        "    return a + b\n"
    )
    assert check(body).passed
    time.sleep(3)
    assert not marker.exists()


@pytest.mark.skipif(not isolation_prefix(), reason="no network namespace on this machine (documented limit)")
def test_network_is_unreachable():
    body = (
        "    import socket\n"
        "    try:\n"
        "        socket.create_connection(('1.1.1.1', 80), timeout=2).close()\n"
        "        return 'connected'\n"
        "    except OSError:\n"
        "        return a + b\n"
    )
    assert check(body).passed
    spec = CodeSpec("t/1", "def up():\n", "up", "", ("()",), ("['lo']",))
    # Only loopback exists (and is down) in the new namespace.
    listing = "    import socket\n    return [n for _, n in socket.if_nameindex()]\n"
    assert check(listing, spec).passed


def test_unknown_language_is_a_recorded_failure():
    spec = CodeSpec("t/2", "", "f", "", ("()",), ("1",), language="cobol")
    result = check("", spec)
    assert not result.passed and "unsupported language" in result.reason


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_cpp_completion_is_compiled_and_checked():
    spec = CodeSpec(
        "CPP/x",
        "#include<vector>\nusing namespace std;\nvector<float> half(vector<float> v){\n",
        "half",
        "",
        ("{1.0, 3.0}", "{}"),
        ("{0.5, 1.5}", "{}"),
        language="c++",
    )
    good = "    for (auto& x : v) x /= 2;\n    return v;\n}\n"
    assert check(good, spec, Limits(timeout_s=5.0, memory_mb=512)).passed
    assert check("    return v;\n}\n", spec, Limits(timeout_s=5.0, memory_mb=512)).reason.startswith("wrong")
    broken = check("    return v\n", spec, Limits(timeout_s=5.0, memory_mb=512))
    assert broken.reason.startswith("compile")


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_javascript_completion_is_checked():
    spec = CodeSpec(
        "JS/x",
        "const pair = (a, b) => {\n",
        "pair",
        "",
        ("1, 2", "'x', 'y'"),
        ("[1, 2]", "['x', 'y']"),
        "javascript",
    )
    limits = Limits(timeout_s=5.0, memory_mb=1024)
    assert check("  return [a, b];\n}\n", spec, limits).passed
    assert check("  return [b, a];\n}\n", spec, limits).reason.startswith("wrong")
    assert check("  while (true) {}\n}\n", spec, Limits(timeout_s=1.0, memory_mb=1024)).reason.startswith(
        "timeout"
    )


def test_limits_hold_without_prlimit(monkeypatch):
    import benchcal_eval.sandbox as sandbox

    real_which = shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "prlimit" else real_which(name))
    assert check("    return a + b\n").passed
    assert check("    x = bytearray(4 * 1024 ** 3)\n").reason.startswith("memory")
    assert check(
        "    while True:\n        pass\n", limits=Limits(timeout_s=1.0, memory_mb=512)
    ).reason.startswith("timeout")
