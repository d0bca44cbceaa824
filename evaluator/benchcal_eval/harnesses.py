"""The test programs the sandbox runs: prompt + completion + a harness per language.

Each harness runs every ``(test_input, test_output)`` pair and, only after the last one passed,
prints a pass token. The token is the parent's secret: it reaches the program on an inherited
pipe (file descriptor ``token_fd``), which the harness reads and closes before any of the
sample's code runs, so it is in no file, argument or environment variable the sample can read
(docs/evaluator.md, "Verdicts"). It is held under no name the sample can write down: a local of
the Python harness's function, a per-sample random identifier in C++ and JavaScript, whose source
is deleted before the sample runs. A sample that searches its own process memory or frames can
still find it: this stops accidents and printed guesses, not an adversary. The parent passes a
sample only if its stdout carries the token.

Python: a harness that ``exec``s prompt + completion from ``solution.py`` after installing the
no-fork filter (``benchcal_eval.nofork``, embedded), then calls the entry point on each
``eval``-ed input and compares with ``==`` against the ``eval``-ed output, falling back to
``str(result) == output`` because some files store unquoted outputs. C++: one file whose first
definition reads the token (static initialisers run in definition order, before the sample's),
then the sample, then a ``main`` comparing with a type-directed ``same()`` (floats within 1e-4
(float) / 1e-6 (double) relative). JavaScript: the token is read by the file's first statement;
deep equality with the same float tolerance and the same string fallback.
"""

from __future__ import annotations

import json
import re
import secrets
from functools import lru_cache
from pathlib import Path

from benchcal_eval import nofork
from benchcal_eval.requests import CodeSpec

_BARE_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")


@lru_cache(maxsize=1)
def _nofork_source() -> str:
    return Path(nofork.__file__).read_text(encoding="utf-8")


def python_program(spec: CodeSpec, code: str, token_fd: int, no_fork: bool = True) -> dict[str, str]:
    tests = json.dumps(list(zip(spec.test_inputs, spec.test_outputs, strict=True)))
    install = (
        "_nofork = {'__name__': 'benchcal_nofork'}\n"
        f"exec(compile({_nofork_source()!r}, 'nofork.py', 'exec'), _nofork)\n"
        "try:\n"
        "    _nofork['install']()\n"
        "except OSError as exc:\n"
        "    print(f'benchcal sandbox: cannot install the no-fork seccomp filter: {exc}', file=sys.stderr)\n"
        "    sys.exit(_nofork['INSTALL_FAILED'])\n"
        "del _nofork\n"
    )
    body = (
        "import json, os, sys\n"
        "def _run():\n"  # the token lives in this frame only: not in __main__, no file, no fd
        f"    token = os.read({token_fd}, 256).decode()\n"
        f"    os.close({token_fd})\n"
        "    source = open('solution.py').read()\n"
        "    os.unlink('solution.py'); os.unlink('harness.py')  # nothing left to read the harness from\n"
        + "".join("    " + line + "\n" for line in (install if no_fork else "").splitlines())
        + "    ns = {'__name__': 'solution'}\n"
        "    exec(compile(source, 'solution.py', 'exec'), ns)\n"
        f"    fn = ns[{spec.entry_point!r}]\n"
        f"    for i, (inp, out) in enumerate(json.loads({tests!r})):\n"
        "        got = fn(*eval(inp))\n"
        "        try:\n"
        "            want = eval(out)\n"
        "        except Exception:\n"
        "            want = out\n"
        "        if got != want and str(got) != out:  # some files store str(result), not repr\n"
        "            print(f'test {i} failed: got {got!r:.200}, want {want!r:.200}', file=sys.stderr)\n"
        "            sys.exit(3)\n"
        "    print(token)\n"
        "_run()\n"
    )
    return {"solution.py": code, "harness.py": body}


_CPP_TOKEN = """#include <cstdio>
#include <string>
static const std::string %s = [] {
  char buf[256];
  std::FILE* f = fdopen(%d, "r");
  size_t n = f ? std::fread(buf, 1, sizeof buf, f) : 0;
  if (f) std::fclose(f);
  return std::string(buf, n);
}();
"""


def _secret_name(prefix: str) -> str:
    """A per-sample identifier for the token's holder: sample text written before it cannot name it."""
    return f"{prefix}{secrets.token_hex(8)}"


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


def cpp_program(spec: CodeSpec, code: str, token_fd: int) -> dict[str, str]:
    holder = _secret_name("benchcal_token_")
    lines = [_CPP_TOKEN % (holder, token_fd), code, _CPP_CHECK, "int main() {"]
    for i, (inp, out) in enumerate(zip(spec.test_inputs, spec.test_outputs, strict=True)):
        lines.append(
            f"  if (!benchcal_check::same({spec.entry_point}({inp}), {_cpp_literal(out)})) {{"
            f' std::cerr << "test {i} failed" << std::endl; return 3; }}'
        )
    lines += [f"  std::cout << {holder} << std::endl;", "  return 0;", "}"]
    return {"solution.cpp": "\n".join(lines) + "\n"}


_JS_TOKEN = """const %s = (() => {
  const fs = require('fs'), buf = Buffer.alloc(256);
  const n = fs.readSync(%d, buf, 0, 256, null);
  fs.closeSync(%d);
  fs.unlinkSync(__filename);  // node holds the source in memory: nothing left to read names from
  return buf.toString('utf8', 0, n);
})();
"""

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


def js_program(spec: CodeSpec, code: str, token_fd: int) -> dict[str, str]:
    holder = _secret_name("__benchcalToken")
    lines = [_JS_TOKEN % (holder, token_fd, token_fd), code, _JS_CHECK]
    for i, (inp, out) in enumerate(zip(spec.test_inputs, spec.test_outputs, strict=True)):
        # Some files store the expected value unquoted (str(result)): fall back to string equality.
        lines.append(
            f"{{ const got = {spec.entry_point}({inp}); const out = {json.dumps(out)}; let want;"
            " try { want = eval('(' + out + ')'); } catch (e) { want = out; }"
            " if (!__benchcalSame(got, want) && String(got) !== out)"
            f" {{ console.error('test {i} failed'); process.exit(3); }} }}"
        )
    lines.append(f"console.log({holder});")
    return {"solution.js": "\n".join(lines) + "\n"}
