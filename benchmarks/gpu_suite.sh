#!/usr/bin/env bash
# One prepared GPU session (~8 min on an H200): GPU tests, the kernel benchmark, the e2e benchmark.
#
#   here (once, with internet):   benchmarks/prepare_gpu_carry.sh        # fills .whl/
#   on the GPU machine:           bash benchmarks/gpu_suite.sh            # device tool: carry [".whl"]
#
# Logs, CSV and JSON go to $OUT (default /tmp/benchcal-gpu); the result lines are printed at the end.
# Each step has its own time limit so one slow step cannot eat the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/benchcal-gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed" >&2; exit 1; }
else
  echo "WARNING: no .whl/ carried: lm-eval may be missing (run benchmarks/prepare_gpu_carry.sh here first)" >&2
fi
export PYTHONPATH="/tmp/site:$PWD:$PWD/evaluator:$PWD/operator:$PWD/reducer${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
  "$PY" -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)"
  git rev-parse --short HEAD 2>/dev/null
} 2>&1 | tee "$OUT/env.txt"

step() {  # step NAME SECONDS CMD...: run with a limit, log to $OUT/NAME.log, record its status
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s) ==="
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/status.txt"
}

# 1. GPU tests: every gpu-marked test in the repo, plus all kernel/flex tests compiled for CUDA.
step gpu_tests 100 "$PY" -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
  tests/evaluator/kernels/test_lm_head_logprobs.py tests/evaluator/engine/test_flex_attention.py
step gpu_marked 60 "$PY" -m pytest -q -p no:cacheprovider -m gpu --continue-on-collection-errors tests \
  --deselect tests/evaluator/kernels/test_lm_head_logprobs.py --deselect tests/evaluator/engine/test_flex_attention.py

# 2. Kernel: ours vs torch eager over V x C x N.
step bench_lm_head_logprobs 90 "$PY" benchmarks/bench_lm_head_logprobs.py --csv "$OUT/bench_lm_head_logprobs.csv"

# 3. End to end vs lm-evaluation-harness (small model first, so a time-out still leaves one result).
step bench_e2e 270 "$PY" benchmarks/bench_e2e.py --models smollm2-135m,llama-2.8b --repeats 2 \
  --json "$OUT/bench_e2e.json"

echo "=== results ==="
cat "$OUT/status.txt"
grep -h -E "^(kernel V=|e2e |WARNING)" "$OUT/bench_lm_head_logprobs.log" "$OUT/bench_e2e.log" | tee "$OUT/results.txt"
tail -n 3 "$OUT/gpu_tests.log" "$OUT/gpu_marked.log"
