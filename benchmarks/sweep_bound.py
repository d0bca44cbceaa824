"""The sharing bound of compare_sweep.py's workload without running the model (seconds, not hours).

Builds the sweep's prompts and token requests exactly as ``compare_sweep.py`` does, packs them with
the engine's CPU defaults (row 256, budget 2048) and counts: ours = tokens in the packed rows (what
``engine.stats.computed_tokens`` would say), harness = the tokens of the distinct model inputs
``(context + continuation)[-(max_length + 1):][:-1]`` (lm-eval's inputs after its logits-cache
dedup, from our token ids: the timed runs found them identical to lm-eval's for every request).

    .venv/bin/python benchmarks/sweep_bound.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare_sweep import TASKS, build_pairs, smollm2_gguf

from benchcal_eval.engine.packing import pack_requests
from benchcal_eval.models import load_model
from benchcal_eval.tokenize import encode_task

lm = load_model(str(smollm2_gguf()), dtype="float32", device="cpu")
for q in (1, 30):
    for sampling in ("nested", "independent", "fixed"):
        pairs = build_pairs(lm.tokenizer, list(TASKS), [0, 1, 3, 5, 10], q, sampling)
        groups = []
        for p in pairs:
            enc = encode_task(p.task, p.rows, p.instances, lm.tokenizer, lm.max_length)
            groups.append([r for e in enc for r in e.requests])
        reqs = [r for g in groups for r in g]
        group_of = [i for i, g in enumerate(groups) for _ in g]
        packing = pack_requests(
            reqs, row_tokens=256, token_budget=2048, max_length=lm.max_length, groups=group_of
        )
        ours = sum(len(r) for b in packing.batches for r in b)
        inputs = {}
        for r in reqs:
            whole = (r.context + r.continuation)[-(lm.max_length + 1) :][:-1]
            inputs[tuple(whole)] = len(whole)
        harness = sum(inputs.values())
        print(
            f"questions {q} {sampling}: {len(reqs)} requests; harness-style model inputs {harness} tokens; "
            f"ours computed {ours} (trie {packing.trie_tokens}); sharing bound {harness / ours:.2f}x",
            flush=True,
        )
