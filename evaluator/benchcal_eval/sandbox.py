"""Run model-generated code in a constrained subprocess and check it against test cases.

Guarantees (see docs/evaluator.md): every program runs in a fresh temporary directory that is
deleted afterwards, with an empty environment, in its own process group (killed as a whole on
timeout and after exit), under setrlimit limits on CPU time, address space, file size, open files
and core dumps, and under a seccomp filter that forbids creating processes (``nofork``): a
sample is one process whatever the uid and the evaluator's thread count. stdout/stderr go to
size-capped files, never to pipes. Where the OS allows, it also runs in new network and PID
namespaces (``unshare``), so it has no network; ``isolation()`` says what this machine gives, and
every code result records it. The pass token comes from the parent on a pipe the harness closes
before the sample runs (``benchcal_eval.harnesses``).

Any crash, hang or limit hit of the *sample* is a failed sample with a recorded reason. What is
wrong with the *harness* (a missing compiler or interpreter, a filter that cannot be installed)
raises ``SandboxUnavailable``: the pair fails, no score is made up.

This is defence against accidents of generated code, not a security boundary against an adversary:
run the evaluator itself in a container without credentials, under a NetworkPolicy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
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
from typing import Any

from benchcal_eval import harnesses, nofork
from benchcal_eval.requests import CodeSpec

log = logging.getLogger("benchcal.evaluate")

# End of a generated function body: a newline followed by a top-level letter, digit, '#' or '`'.
_FUNCTION_END = re.compile(r"\n[A-Za-z0-9#`]")

# Namespace prefixes tried in order; the first that runs `true` is used.
_ISOLATION_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--net", "--pid", "--fork", "--kill-child"),
    ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"),
    ("unshare", "--net"),
)
_NOFORK = Path(nofork.__file__)
_EXEC_FAILED = 127  # nofork.py could not exec the program
# language -> the tool it needs (python: the evaluator's own interpreter)
TOOLCHAINS = {"python": "python", "c++": "g++", "cpp": "g++", "javascript": "node", "js": "node"}


class SandboxUnavailable(RuntimeError):
    """The harness cannot run samples here (missing toolchain, no filter): the pair fails."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock for the whole program (all its tests)
    memory_mb: int = 1024  # address space; node needs ~1 GiB just to start
    output_bytes: int = 1 << 20  # per stream; writing more kills the program (SIGXFSZ)
    open_files: int = 64

    def key(self) -> dict[str, Any]:
        """What changes code verdicts (part of a code pair's resume key)."""
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "output_bytes": self.output_bytes}


@dataclass(frozen=True)
class Isolation:
    """What this machine lets the sandbox use (probed once per process)."""

    prefix: tuple[str, ...]  # the unshare prefix, () when no namespace is available
    no_fork: bool  # the seccomp filter can be installed

    @property
    def network_isolated(self) -> bool:
        return "--net" in self.prefix

    @property
    def process_bound(self) -> str:
        if self.no_fork:
            return "seccomp: one process per sample (threads bounded by the address-space limit)"
        return "none: only the container's pids limit (Kubernetes podPidsLimit) bounds a sample's processes"

    def record(self) -> dict[str, Any]:
        """Stored in every code result (``TaskResult.sandbox``)."""
        return {
            "network_isolated": self.network_isolated,
            "pid_namespace": "--pid" in self.prefix,
            "process_bound": self.process_bound.split(":")[0],
            "namespaces": " ".join(self.prefix) or "none",
        }


@dataclass(frozen=True)
class Outcome:
    """What happened to one sandboxed program."""

    status: str  # ok | error | timeout | memory | output_limit
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
    network_isolated: bool = False


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


@functools.lru_cache(maxsize=1)
def _no_fork_works() -> bool:
    probe = "import os\ntry:\n    os.fork()\nexcept OSError:\n    raise SystemExit(0)\nos._exit(1)"
    argv = [sys.executable, "-I", "-S", str(_NOFORK), sys.executable, "-I", "-S", "-c", probe]
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, env={}).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def isolation() -> Isolation:
    return Isolation(isolation_prefix(), nofork.supported() and _no_fork_works())


_warned = False


def warn_once_if_not_isolated() -> Isolation:
    """Log loudly, once per process, what the samples of this machine are not protected from."""
    global _warned
    iso = isolation()
    if not _warned and not (iso.network_isolated and iso.no_fork):
        _warned = True
        missing = []
        if not iso.network_isolated:
            missing.append(
                "NO NETWORK ISOLATION: no network namespace is available (unshare failed: no CAP_SYS_ADMIN "
                "and no user namespaces), so code samples can reach every network the evaluator can"
            )
        if not iso.no_fork:
            missing.append(f"no process bound of its own ({iso.process_bound})")
        log.warning(
            "!!! code sandbox: %s. In Kubernetes, run evaluator pods under the chart's NetworkPolicy "
            "(docs/operations.md); each code result records this in its 'sandbox' field.",
            "; ".join(missing),
        )
    return iso


def require_toolchain(language: str) -> str:
    """The executable a language's samples need; ``SandboxUnavailable`` naming it when it is missing."""
    tool = TOOLCHAINS.get(language.lower())
    if tool is None:
        raise SandboxUnavailable(f"unsupported language {language!r} (supported: python, c++, javascript)")
    path = sys.executable if tool == "python" else shutil.which(tool)
    if not path or not os.access(path, os.X_OK):
        where = "the evaluator image ships it" if tool != "python" else "sys.executable is not runnable"
        raise SandboxUnavailable(
            f"{tool} not found (PATH={os.environ.get('PATH', '')}): {language} samples cannot be checked; "
            f"install {tool} ({where})"
        )
    return path


def _limit_args(limits: Limits, cpu_s: int) -> tuple[str, ...]:
    mem = limits.memory_mb << 20
    return (
        f"--as={mem}", f"--cpu={cpu_s}:{cpu_s + 1}", f"--fsize={limits.output_bytes}",
        f"--nofile={limits.open_files}", "--core=0",
    )  # fmt: skip


def _set_limits(limits: Limits, cpu_s: int) -> None:
    # Fallback without prlimit(1): runs in the child between fork and exec (not thread-safe).
    mem = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_program(
    argv: Sequence[str],
    workdir: Path,
    limits: Limits = Limits(),
    env: dict[str, str] | None = None,
    isolate: bool = True,
    no_fork: bool = False,
    pass_fds: Sequence[int] = (),
) -> Outcome:
    """Run ``argv`` in ``workdir`` under ``limits``; never raises for misbehaving programs.

    ``no_fork`` runs it behind the seccomp filter (``SandboxUnavailable`` where it cannot be
    installed); ``pass_fds`` stay open in the program (the pass token's pipe).
    """
    prefix = isolation_prefix() if isolate else ()
    wrapper: tuple[str, ...] = ()
    if no_fork:
        if not isolation().no_fork:
            raise SandboxUnavailable("the no-fork seccomp filter cannot be installed on this machine")
        wrapper = (sys.executable, "-I", "-S", str(_NOFORK))
    out_path, err_path = workdir / ".stdout", workdir / ".stderr"
    cpu_s = max(1, int(limits.timeout_s) + 1)
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        # prlimit(1) sets the limits and execs: no Python code between fork and exec, so this
        # is safe to call from several threads at once (the runner checks samples in parallel).
        prlimit = shutil.which("prlimit")
        limit_prefix = (prlimit, *_limit_args(limits, cpu_s), "--") if prlimit else ()
        try:
            proc = subprocess.Popen(
                [*limit_prefix, *prefix, *wrapper, *argv],
                cwd=workdir,
                env=env or {},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
                preexec_fn=None if prlimit else functools.partial(_set_limits, limits, cpu_s),
            )
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start {argv[0]}: {exc}") from exc
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
    if wrapper and rc in (nofork.INSTALL_FAILED, _EXEC_FAILED) and "benchcal sandbox:" in stderr:
        raise SandboxUnavailable(stderr.strip().splitlines()[-1])
    if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        status = "timeout"
    elif rc in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or (rc != 0 and "File too large" in stderr):
        # Python ignores SIGXFSZ and raises EFBIG instead.
        status = "output_limit"
    elif rc != 0 and re.search(r"MemoryError|bad_alloc|out of memory|heap out of memory", stderr, re.I):
        status = "memory"
    else:
        status = "ok" if rc == 0 else "error"
    return Outcome(status, rc, stdout, stderr, seconds, "--net" in prefix)


def _read_capped(path: Path, cap: int) -> str:
    with open(path, "rb") as fh:
        return fh.read(cap).decode("utf-8", errors="replace")


# ---- checking completions --------------------------------------------------------------------------


def truncate_completion(completion: str) -> str:
    """Cut a completion where the function body ends (a new top-level line)."""
    m = _FUNCTION_END.search(completion)
    return completion[: m.start()] if m else completion


def _token_pipe(token: str) -> int:
    """A pipe holding ``token``; the read end is returned (the write end is closed)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, token.encode())
    finally:
        os.close(write_fd)
    return read_fd


def check_completion(spec: CodeSpec, completion: str, limits: Limits = Limits()) -> CodeCheck:
    """Run prompt + (truncated) completion against every (input, output) test of ``spec``.

    Raises ``SandboxUnavailable`` when the harness cannot run here (the sample is not to blame).
    """
    start = time.monotonic()
    language = spec.language.lower()
    exe = require_toolchain(language)
    code = spec.prompt + truncate_completion(completion)
    token = f"BENCHCAL-PASS-{secrets.token_hex(16)}"
    no_fork = isolation().no_fork  # without it: recorded and warned about (process_bound "none")
    token_fd = _token_pipe(token)
    try:
        with tempfile.TemporaryDirectory(prefix="benchcal-sandbox-") as tmp:
            workdir = Path(tmp)
            tool = TOOLCHAINS[language]
            if tool == "python":
                files = harnesses.python_program(spec, code, token_fd, no_fork)
                argv, wrap = [exe, "-I", "-B", "harness.py"], False  # the harness installs the filter
            elif tool == "g++":
                files, argv, wrap = harnesses.cpp_program(spec, code, token_fd), ["./solution"], no_fork
            else:
                files, argv, wrap = harnesses.js_program(spec, code, token_fd), [exe, "solution.js"], no_fork
            for name, text in files.items():
                (workdir / name).write_text(text, encoding="utf-8")
            if tool == "g++":
                compile_limits = Limits(timeout_s=60.0, memory_mb=max(limits.memory_mb, 2048))
                built = run_program(
                    [exe, "-std=c++17", "-O0", "-o", "solution", "solution.cpp"],
                    workdir,
                    compile_limits,
                    env={"PATH": "/usr/local/bin:/usr/bin:/bin"},  # g++ finds as/ld on PATH
                )
                if built.status != "ok":
                    return CodeCheck(False, f"compile {built.reason}", time.monotonic() - start)
                (workdir / "solution.cpp").unlink()  # the source names the token's holder
            outcome = run_program(argv, workdir, limits, no_fork=wrap, pass_fds=(token_fd,))
    finally:
        os.close(token_fd)
    if outcome.returncode == nofork.INSTALL_FAILED and "benchcal sandbox:" in outcome.stderr:
        raise SandboxUnavailable(outcome.stderr.strip().splitlines()[-1])
    seconds = time.monotonic() - start
    iso = outcome.network_isolated
    if outcome.status == "ok" and token in outcome.stdout.splitlines():
        return CodeCheck(True, "passed", seconds, iso)
    if outcome.status == "ok":
        return CodeCheck(False, "exited 0 before finishing the tests", seconds, iso)
    if outcome.returncode == 3 and outcome.status == "error":
        return CodeCheck(False, f"wrong answer: {outcome.reason}", seconds, iso)
    return CodeCheck(False, outcome.reason, seconds, iso)
