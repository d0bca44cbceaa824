"""A seccomp filter that lets a process run threads but never create another process.

This is how the code sandbox bounds a sample's processes: the bound is one process (its
threads are bounded by the address-space limit, each needs a stack), whatever the uid, its
other processes and the evaluator's own thread count. ``RLIMIT_NPROC`` cannot do that: it counts
every task of the real uid on the node, the evaluator's torch threads and other pods of uid
65532 included (issue 12).

fork and vfork fail with EAGAIN, clone without ``CLONE_THREAD`` fails with EAGAIN, clone3 with
ENOSYS (its flags live in memory a filter cannot read; glibc then falls back to clone for
threads). Filters survive ``execve`` and cannot be removed, so a program exec'd after
``install()`` inherits it; ``no_new_privs`` (required to install a filter without
CAP_SYS_ADMIN) is set first, as Kubernetes already does for ``allowPrivilegeEscalation: false``.

Standard library only: the Python harness embeds this file's source, and it runs as a script
(``python -I -S nofork.py PROGRAM ARGS...``) in front of compiled and JavaScript samples.
"""

import ctypes
import os
import platform
import struct
import sys

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CLONE_THREAD = 0x00010000
_EAGAIN, _ENOSYS = 11, 38
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
# BPF opcodes: ld|w|abs, jmp|jeq|k, jmp|jge|k, jmp|jset|k, ret|k
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
# (AUDIT_ARCH, {syscall: errno}, clone's number, x32 bit) per machine
_ARCHES = {
    "x86_64": (0xC000003E, {57: _EAGAIN, 58: _EAGAIN, 435: _ENOSYS}, 56, 0x40000000),
    "aarch64": (0xC00000B7, {435: _ENOSYS}, 220, 0),
}


def _program(machine):
    arch, denied, clone, x32 = _ARCHES[machine]
    prog = [(_LD, 0, 0, 4)]  # seccomp_data.arch
    prog.append((_JEQ, 1, 0, arch))
    prog.append((_RET, 0, 0, _RET_KILL_PROCESS))  # another ABI (e.g. i386 on x86_64): never
    prog.append((_LD, 0, 0, 0))  # seccomp_data.nr
    if x32:
        prog.append((_JGE, 0, 1, x32))
        prog.append((_RET, 0, 0, _RET_ERRNO | _ENOSYS))
    for nr, errno in denied.items():
        prog.append((_JEQ, 0, 1, nr))
        prog.append((_RET, 0, 0, _RET_ERRNO | errno))
    prog.append((_JEQ, 1, 0, clone))
    prog.append((_RET, 0, 0, _RET_ALLOW))
    prog.append((_LD, 0, 0, 16))  # low 32 bits of args[0]: clone's flags
    prog.append((_JSET, 0, 1, _CLONE_THREAD))
    prog.append((_RET, 0, 0, _RET_ALLOW))
    prog.append((_RET, 0, 0, _RET_ERRNO | _EAGAIN))
    return prog


def supported():
    """Whether this machine's architecture has a filter here (Linux x86_64 and aarch64)."""
    return sys.platform.startswith("linux") and platform.machine() in _ARCHES


def install():
    """Forbid new processes for this process and everything it execs; raises OSError if impossible."""
    if not supported():
        raise OSError(f"no seccomp filter for {sys.platform}/{platform.machine()}")
    prog = _program(platform.machine())
    raw = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Fprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")


# Exit status of the script form when the filter cannot be installed (the program never runs).
INSTALL_FAILED = 125


def main(argv):
    if not argv:
        sys.stderr.write("usage: nofork.py PROGRAM [ARGS...]\n")
        return 2
    try:
        install()
    except OSError as exc:
        sys.stderr.write(f"benchcal sandbox: cannot install the no-fork seccomp filter: {exc}\n")
        return INSTALL_FAILED
    os.execv(argv[0], argv)
    return INSTALL_FAILED  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
