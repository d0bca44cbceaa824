"""Run model-generated code in a constrained subprocess and check it against test cases.

Guarantees (see docs/evaluator.md): every program runs in a fresh temporary directory that is
deleted afterwards, with an empty environment, in its own process group (killed as a whole on
timeout and after exit), under setrlimit limits on CPU time, address space, file size, open files
and core dumps; stdout/stderr go to size-capped files, never to pipes, so garbage output cannot
exhaust the parent. Where the OS allows, it also runs in new network and PID namespaces
(``unshare``), so it has no network and its children die with it. Any crash, hang or limit hit
is a failed sample with a recorded reason; nothing here raises for bad generated code.

This is defence against accidents of generated code, not a security boundary against an adversary:
run the evaluator itself in a container without credentials.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchcal_eval.requests import CodeSpec

# End of a generated function body: a newline followed by a top-level letter, digit, '#' or '`'.
_FUNCTION_END = re.compile(r"\n[A-Za-z0-9#`]")
_BARE_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")

# Namespace prefixes tried in order; the first that runs `true` is used.
_ISOLATION_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--net", "--pid", "--fork", "--kill-child"),
    ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"),
    ("unshare", "--net"),
)


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock for the whole program (all its tests)
    memory_mb: int = 1024  # address space; node needs ~1 GiB just to start
    output_bytes: int = 1 << 20  # per stream; writing more kills the program (SIGXFSZ)
    open_files: int = 64
    processes: int = 64  # RLIMIT_NPROC; not enforced for root, the PID namespace covers that case


@dataclass(frozen=True)
class Outcome:
    """What happened to one sandboxed program."""

    status: str  # ok | error | timeout | memory | output_limit | unavailable
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    network_isolated: bool

    @property
    def reason(self) -> str:
        lines = self.stderr.strip().splitlines() or [""]
        # The last line naming an error beats a trailing banner such as node's version line.
        tail = next((ln for ln in reversed(lines) if re.search(r"error|exception", ln, re.I)), lines[-1])
        tail = tail.strip()[:200]
        return f"{self.status} (exit {self.returncode}){': ' + tail if tail else ''}"


@dataclass(frozen=True)
class CodeCheck:
    """Verdict on one generated completion."""

    passed: bool
    reason: str  # "passed", or why it failed
    seconds: float


@functools.lru_cache(maxsize=1)
def isolation_prefix() -> tuple[str, ...]:
    """The namespace prefix this machine supports, or () when none works (no network isolation)."""
    if shutil.which("unshare") is None:
        return ()
    for prefix in _ISOLATION_PREFIXES:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return prefix
    return ()


def _limit_args(limits: Limits, cpu_s: int) -> tuple[str, ...]:
    mem = limits.memory_mb << 20
    return (
        f"--as={mem}", f"--cpu={cpu_s}:{cpu_s + 1}", f"--fsize={limits.output_bytes}",
        f"--nofile={limits.open_files}", "--core=0", f"--nproc={limits.processes}",
    )  # fmt: skip


def _set_limits(limits: Limits, cpu_s: int) -> None:
    # Fallback without prlimit(1): runs in the child between fork and exec (not thread-safe).
    mem = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_program(
    argv: Sequence[str],
    workdir: Path,
    limits: Limits = Limits(),
    env: dict[str, str] | None = None,
    isolate: bool = True,
) -> Outcome:
    """Run ``argv`` in ``workdir`` under ``limits``; never raises for misbehaving programs."""
    prefix = isolation_prefix() if isolate else ()
    out_path, err_path = workdir / ".stdout", workdir / ".stderr"
    cpu_s = max(1, int(limits.timeout_s) + 1)
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            # prlimit(1) sets the limits and execs: no Python code between fork and exec, so this
            # is safe to call from several threads at once (the runner checks samples in parallel).
            prlimit = shutil.which("prlimit")
            limit_prefix = (prlimit, *_limit_args(limits, cpu_s), "--") if prlimit else ()
            proc = subprocess.Popen(
                [*limit_prefix, *prefix, *argv],
                cwd=workdir,
                env=env or {},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=None if prlimit else functools.partial(_set_limits, limits, cpu_s),
            )
        except OSError as exc:
            return Outcome("unavailable", None, "", str(exc), 0.0, bool(prefix))
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(proc.pid)  # also reaps background children left behind by a finished program
        proc.wait()
    seconds = time.monotonic() - start
    stdout = _read_capped(out_path, limits.output_bytes)
    stderr = _read_capped(err_path, limits.output_bytes)
    rc = proc.returncode
    if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        status = "timeout"
    elif rc in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or (rc != 0 and "File too large" in stderr):
        # Python ignores SIGXFSZ and raises EFBIG instead.
        status = "output_limit"
    elif rc != 0 and re.search(r"MemoryError|bad_alloc|out of memory|heap out of memory", stderr, re.I):
        status = "memory"
    else:
        status = "ok" if rc == 0 else "error"
    return Outcome(status, rc, stdout, stderr, seconds, bool(prefix))


def _read_capped(path: Path, cap: int) -> str:
    with open(path, "rb") as fh:
        return fh.read(cap).decode("utf-8", errors="replace")


# ---- checking completions --------------------------------------------------------------------------


def truncate_completion(completion: str) -> str:
    """Cut a completion where the function body ends (a new top-level line)."""
    m = _FUNCTION_END.search(completion)
    return completion[: m.start()] if m else completion


def _python_program(spec: CodeSpec, code: str, nonce: str) -> dict[str, str]:
    tests = json.dumps(list(zip(spec.test_inputs, spec.test_outputs, strict=True)))
    harness = (
        "import json, sys\n"
        "ns = {'__name__': 'solution'}\n"
        "exec(compile(open('solution.py').read(), 'solution.py', 'exec'), ns)\n"
        f"fn = ns[{spec.entry_point!r}]\n"
        f"for i, (inp, out) in enumerate(json.loads({tests!r})):\n"
        "    got = fn(*eval(inp))\n"
        "    try:\n"
        "        want = eval(out)\n"
        "    except Exception:\n"
        "        want = out\n"
        "    if got != want and str(got) != out:  # some files store str(result), not repr\n"
        "        print(f'test {i} failed: got {got!r:.200}, want {want!r:.200}', file=sys.stderr)\n"
        "        sys.exit(3)\n"
        f"print({nonce!r})\n"
    )
    return {"solution.py": code, "harness.py": harness}


_CPP_CHECK = """
#include <cmath>
#include <iostream>
#include <string>
#include <type_traits>
#include <vector>
namespace benchcal_check {
template <class T> struct ident { using type = T; };
template <class T> struct is_vec : std::false_type {};
template <class T, class A> struct is_vec<std::vector<T, A>> : std::true_type {};
template <class T> bool same(const T& a, const typename ident<T>::type& b) {
  if constexpr (std::is_floating_point_v<T>) {
    const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-6;  // float keeps ~7 digits
    return std::fabs((double)a - (double)b) <= tol * std::fmax(1.0, std::fabs((double)b));
  } else if constexpr (is_vec<T>::value) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) if (!same(a[i], b[i])) return false;
    return true;
  } else {
    return a == b;
  }
}
}
"""


def _cpp_literal(out: str) -> str:
    """Some files store string outputs unquoted (str(result)); a bare word cannot be C++ code here."""
    if _BARE_WORDS.fullmatch(out) and out not in ("true", "false"):
        return json.dumps(out)
    return out


def _cpp_program(spec: CodeSpec, code: str, nonce: str) -> dict[str, str]:
    lines = [code, _CPP_CHECK, "int main() {"]
    for i, (inp, out) in enumerate(zip(spec.test_inputs, spec.test_outputs, strict=True)):
        lines.append(
            f"  if (!benchcal_check::same({spec.entry_point}({inp}), {_cpp_literal(out)})) {{"
            f' std::cerr << "test {i} failed" << std::endl; return 3; }}'
        )
    lines += [f'  std::cout << "{nonce}" << std::endl;', "  return 0;", "}"]
    return {"solution.cpp": "\n".join(lines) + "\n"}


_JS_CHECK = """
function __benchcalSame(a, b) {
  if (typeof a === 'number' && typeof b === 'number')
    return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) || (Number.isNaN(a) && Number.isNaN(b));
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => __benchcalSame(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => __benchcalSame(a[k], b[k]));
  }
  return a === b;
}
"""


def _js_program(spec: CodeSpec, code: str, nonce: str) -> dict[str, str]:
    lines = [code, _JS_CHECK]
    for i, (inp, out) in enumerate(zip(spec.test_inputs, spec.test_outputs, strict=True)):
        # Some files store the expected value unquoted (str(result)): fall back to string equality.
        lines.append(
            f"{{ const got = {spec.entry_point}({inp}); const out = {json.dumps(out)}; let want;"
            " try { want = eval('(' + out + ')'); } catch (e) { want = out; }"
            " if (!__benchcalSame(got, want) && String(got) !== out)"
            f" {{ console.error('test {i} failed'); process.exit(3); }} }}"
        )
    lines.append(f"console.log({json.dumps(nonce)});")
    return {"solution.js": "\n".join(lines) + "\n"}


def _toolchain(language: str) -> tuple[str | None, str]:
    """(executable, reason-if-missing) for a language."""
    if language == "python":
        return sys.executable, ""
    tool = {"c++": "g++", "cpp": "g++", "javascript": "node", "js": "node"}.get(language)
    if tool is None:
        return None, f"unsupported language {language!r}"
    path = shutil.which(tool)
    return path, "" if path else f"{tool} not installed: {language} samples cannot be checked"


def check_completion(spec: CodeSpec, completion: str, limits: Limits = Limits()) -> CodeCheck:
    """Run prompt + (truncated) completion against every (input, output) test of ``spec``."""
    start = time.monotonic()
    language = spec.language.lower()
    exe, missing = _toolchain(language)
    if exe is None:
        return CodeCheck(False, f"unavailable: {missing}", 0.0)
    code = spec.prompt + truncate_completion(completion)
    nonce = f"BENCHCAL-PASS-{secrets.token_hex(8)}"
    with tempfile.TemporaryDirectory(prefix="benchcal-sandbox-") as tmp:
        workdir = Path(tmp)
        if language == "python":
            files, argv = _python_program(spec, code, nonce), [exe, "-I", "-B", "harness.py"]
        elif language in ("c++", "cpp"):
            files, argv = _cpp_program(spec, code, nonce), ["./solution"]
        else:
            files, argv = _js_program(spec, code, nonce), [exe, "solution.js"]
        for name, text in files.items():
            (workdir / name).write_text(text, encoding="utf-8")
        if language in ("c++", "cpp"):
            compile_limits = Limits(
                timeout_s=60.0, memory_mb=max(limits.memory_mb, 2048), output_bytes=1 << 20
            )
            built = run_program(
                [exe, "-std=c++17", "-O0", "-o", "solution", "solution.cpp"],
                workdir,
                compile_limits,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin"},  # g++ finds as/ld on PATH
            )
            if built.status != "ok":
                return CodeCheck(False, f"compile {built.reason}", time.monotonic() - start)
        outcome = run_program(argv, workdir, limits)
    seconds = time.monotonic() - start
    if outcome.status == "ok" and nonce in outcome.stdout.splitlines():
        return CodeCheck(True, "passed", seconds)
    if outcome.status == "ok":
        return CodeCheck(False, "exited 0 before finishing the tests", seconds)
    if outcome.returncode == 3 and outcome.status == "error":
        return CodeCheck(False, f"wrong answer: {outcome.reason}", seconds)
    return CodeCheck(False, outcome.reason, seconds)
