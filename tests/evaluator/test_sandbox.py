"""The code sandbox: misbehaving completions are failed samples with a reason, never a crash."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import benchcal_eval
from benchcal_eval.requests import CodeSpec
from benchcal_eval.sandbox import (
    Limits,
    SandboxUnavailable,
    check_completion,
    isolation,
    isolation_prefix,
    run_program,
    truncate_completion,
)

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


def test_background_children_of_a_program_are_killed(tmp_path):
    # What the group kill guarantees for programs allowed to fork (the C++ compiler): nothing survives.
    marker = tmp_path / "alive"
    outcome = run_program(["/bin/sh", "-c", f"(sleep 2; touch {marker}) & exit 0"], tmp_path, FAST)
    assert outcome.status == "ok"
    time.sleep(3)
    assert not marker.exists()


@pytest.mark.skipif(not isolation().no_fork, reason="no seccomp filter on this machine (documented limit)")
def test_samples_cannot_create_processes_but_can_run_threads():
    spawn = "    import subprocess\n    subprocess.run(['/bin/true'])\n    return a + b\n"
    result = check(spawn)
    assert not result.passed and "Resource temporarily unavailable" in result.reason
    bomb = "    import os\n    while True:\n        os.fork()\n"
    start = time.monotonic()
    result = check(bomb)
    assert not result.passed and "Resource temporarily unavailable" in result.reason
    assert time.monotonic() - start < FAST.timeout_s  # refused at once, not a timeout
    threads = (
        "    import threading\n    out = []\n"
        "    ts = [threading.Thread(target=out.append, args=(1,)) for _ in range(20)]\n"
        "    [t.start() for t in ts]; [t.join() for t in ts]\n"
        "    return a + b if len(out) == 20 else -1\n"
    )
    assert check(threads).passed


# A completion that looks for the pass token everywhere a sample can look (the review's
# "read_nonce"): its files, its command line and environment, its open descriptors; it prints
# whatever looks like a token and exits 0 before the tests run.
READ_TOKEN_PY = """    import glob, os, re
    found = set()
    for path in glob.glob('*') + glob.glob('.*') + ['/proc/self/cmdline', '/proc/self/environ']:
        try:
            found.update(re.findall(r'BENCHCAL-PASS-[0-9a-f]+', open(path, errors='replace').read()))
        except OSError:
            pass
    for fd in range(3, 64):
        try:
            found.update(re.findall(r'BENCHCAL-PASS-[0-9a-f]+', os.read(fd, 4096).decode(errors='replace')))
        except OSError:
            pass
    print('\\n'.join(found), flush=True)
    os._exit(0)
"""


def test_a_completion_cannot_read_the_pass_token():
    result = check(READ_TOKEN_PY)
    assert not result.passed, result.reason
    assert "before finishing" in result.reason


# Where the harness could keep the token by name: __main__'s globals, any module, the harness's
# own source (read back and exec'd); a hit is printed before exiting 0.
READ_TOKEN_BY_NAME_PY = """    import os, re, sys
    hits = []
    for module in list(sys.modules.values()):
        for value in list(vars(module).values()):
            if isinstance(value, str) and re.fullmatch(r'BENCHCAL-PASS-[0-9a-f]+', value):
                hits.append(value)
    for name in ('harness.py', 'solution.py'):
        try:
            hits.append(open(name).read())
        except OSError:
            pass
    print('\\n'.join(hits), flush=True)
    os._exit(0)
"""


def test_a_python_completion_cannot_reach_the_token_by_name_or_from_the_harness_source():
    result = check(READ_TOKEN_BY_NAME_PY)
    assert not result.passed and "before finishing" in result.reason, result.reason


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_a_cpp_completion_cannot_name_the_token_s_holder():
    spec = CodeSpec("CPP/t", "#include <iostream>\n#include <unistd.h>\nint add(int a, int b){\n", "add", "",
                    ("1, 2",), ("3",), language="c++")  # fmt: skip
    body = "  std::cout << benchcal_pass_token << std::endl; _exit(0);\n}\n"  # the old fixed name
    result = check(body, spec, Limits(timeout_s=10.0, memory_mb=512))
    assert not result.passed and result.reason.startswith("compile"), result.reason


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_a_javascript_completion_cannot_find_the_token_s_holder_in_its_source():
    spec = CodeSpec("JS/t", "const add = (a, b) => {\n", "add", "", ("1, 2",), ("3",), "javascript")
    body = (
        "  let src = ''; try { src = require('fs').readFileSync(__filename, 'utf8'); } catch (e) {}\n"
        "  for (const name of src.match(/__benchcal[A-Za-z0-9_]*/g) || []) {\n"
        "    try { console.log(eval(name)); } catch (e) {} }\n"
        "  process.exit(0);\n}\n"
    )
    result = check(body, spec, Limits(timeout_s=5.0, memory_mb=1024))
    assert not result.passed and "before finishing" in result.reason, result.reason


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_a_javascript_completion_cannot_read_the_pass_token():
    spec = CodeSpec("JS/t", "const add = (a, b) => {\n", "add", "", ("1, 2",), ("3",), "javascript")
    body = (
        "  const fs = require('fs'); const found = new Set();\n"
        "  const scan = (s) => (s.match(/BENCHCAL-PASS-[0-9a-f]+/g) || []).forEach((m) => found.add(m));\n"
        "  for (const f of fs.readdirSync('.')) { try { scan(fs.readFileSync(f, 'utf8')); } catch (e) {} }\n"
        "  for (const f of ['/proc/self/cmdline', '/proc/self/environ']) { try { scan(fs.readFileSync(f, 'utf8')); } catch (e) {} }\n"
        "  const nb = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;  // node's own pipes would block\n"
        "  for (let fd = 3; fd < 64; fd++) { try { const d = fs.openSync(`/proc/self/fd/${fd}`, nb);\n"
        "    const b = Buffer.alloc(4096); const n = fs.readSync(d, b, 0, 4096, null); scan(b.toString('utf8', 0, n)); } catch (e) {} }\n"
        "  console.log([...found].join('\\n')); process.exit(0);\n}\n"
    )
    result = check(body, spec, Limits(timeout_s=5.0, memory_mb=1024))
    assert not result.passed and "before finishing" in result.reason, result.reason


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_a_cpp_completion_cannot_read_the_pass_token():
    spec = CodeSpec("CPP/t", "#include <cstdio>\n#include <unistd.h>\nint add(int a, int b){\n", "add", "",
                    ("1, 2",), ("3",), language="c++")  # fmt: skip
    body = (
        "  char buf[4096];\n"
        "  for (int fd = 3; fd < 64; fd++) { ssize_t n = read(fd, buf, sizeof buf); if (n > 0) fwrite(buf, 1, n, stdout); }\n"
        '  const char* files[] = {"solution.cpp", "solution", "/proc/self/cmdline", "/proc/self/environ"};\n'
        '  for (const char* name : files) { FILE* f = fopen(name, "r"); if (!f) continue;\n'
        "    size_t n; while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout); fclose(f); }\n"
        "  fflush(stdout); _exit(0);\n}\n"
    )
    result = check(body, spec, Limits(timeout_s=10.0, memory_mb=512))
    assert not result.passed and "before finishing" in result.reason, result.reason


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


def test_an_unknown_language_is_a_harness_failure_not_a_score():
    spec = CodeSpec("t/2", "", "f", "", ("()",), ("1",), language="cobol")
    with pytest.raises(SandboxUnavailable, match="unsupported language 'cobol'"):
        check("", spec)


@pytest.mark.parametrize(("language", "tool"), [("c++", "g++"), ("javascript", "node")])
def test_a_missing_toolchain_is_a_harness_failure_naming_the_tool(monkeypatch, language, tool):
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = CodeSpec("t/3", "", "f", "", ("()",), ("1",), language=language)
    with pytest.raises(SandboxUnavailable, match=re.escape(f"{tool} not found")):
        check("", spec)


def test_isolation_is_reported_for_the_results():
    record = isolation().record()
    assert set(record) == {"network_isolated", "pid_namespace", "process_bound", "namespaces"}
    assert record["network_isolated"] == ("--net" in isolation_prefix())
    assert check("    return a + b\n").network_isolated == record["network_isolated"]


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


# ---- as pods run it: a non-root uid whose process is busy with threads ---------------------------

NONROOT_UID = 65532  # the uid the chart runs pods as
BUSY_PARENT = """
import json, sys, threading
stop = threading.Event()
for _ in range(80):  # the evaluator's torch, tokenizer and pool threads
    threading.Thread(target=stop.wait, daemon=True).start()
from benchcal_eval.requests import CodeSpec
from benchcal_eval.sandbox import Limits, check_completion, isolation
limits = Limits(timeout_s=10.0, memory_mb=1024)
cases = {
    "python": (CodeSpec("t/0", "def add(a, b):\\n", "add", "", ("(1, 2)",), ("3",)), "    return a + b\\n"),
    "javascript": (CodeSpec("JS/0", "const add = (a, b) => {\\n", "add", "", ("1, 2",), ("3",), "javascript"),
                   "  return a + b;\\n}\\n"),
    "c++": (CodeSpec("CPP/0", "int add(int a, int b){\\n", "add", "", ("1, 2",), ("3",), "c++"),
            "  return a + b;\\n}\\n"),
    "fork bomb": (CodeSpec("t/1", "def add(a, b):\\n", "add", "", ("(1, 2)",), ("3",)),
                  "    import os\\n    while True:\\n        os.fork()\\n"),
}
out = {name: check_completion(spec, body, limits).reason for name, (spec, body) in cases.items()}
out["threads"] = threading.active_count()
out["isolation"] = isolation().record()
print(json.dumps(out))
"""


def _nonroot_command() -> list[str]:
    """Run as uid 65532 (the pods' uid) when we are root, else as ourselves."""
    if os.geteuid() != 0:
        return [sys.executable]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to run the sandbox as a non-root uid")
    drop = [setpriv, f"--reuid={NONROOT_UID}", f"--regid={NONROOT_UID}", "--clear-groups"]
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        probe = "import os, sys; sys.exit(not os.access(sys.executable, os.X_OK))"  # it must re-exec itself
        if subprocess.run([*drop, python, "-c", probe], capture_output=True, cwd="/tmp").returncode == 0:
            return [*drop, python]
    pytest.fail(f"no Python interpreter that uid {NONROOT_UID} may run (tried {sys.executable})")


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("node") is None, reason="needs g++ and node")
def test_samples_run_as_a_non_root_uid_with_a_busy_parent():
    evaluator_src = Path(benchcal_eval.__file__).resolve().parents[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(evaluator_src), "HOME": "/tmp"}
    proc = subprocess.run(
        [*_nonroot_command(), "-c", BUSY_PARENT],
        capture_output=True,
        text=True,
        env=env,
        cwd="/tmp",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["threads"] >= 81
    assert (out["python"], out["javascript"], out["c++"]) == ("passed", "passed", "passed"), out
    if out["isolation"]["process_bound"] == "seccomp":
        assert "Resource temporarily unavailable" in out["fork bomb"], out


def test_no_network_isolation_is_recorded_and_warned_about_once(monkeypatch, caplog):
    """With capabilities dropped `unshare -n` fails: the results must say so, and the log loudly."""
    import benchcal_eval.sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "isolation_prefix", lambda: ())
    monkeypatch.setattr(sandbox_module, "_warned", False)
    with caplog.at_level("WARNING", logger="benchcal.evaluate"):
        first = sandbox_module.warn_once_if_not_isolated()
        sandbox_module.warn_once_if_not_isolated()
    warnings = [r.getMessage() for r in caplog.records if "NO NETWORK ISOLATION" in r.getMessage()]
    assert len(warnings) == 1 and "NetworkPolicy" in warnings[0]
    assert first.record()["network_isolated"] is False
    assert check("    return a + b\n").network_isolated is False
