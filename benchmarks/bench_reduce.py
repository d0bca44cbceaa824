"""Time the reducer on a synthetic table: 100 benchmarks x 5 shot counts x 50 checkpoints.

Goal: load + reduce + write (figures off, no bootstrap) under 2 s on the 2-core dev machine;
the confidence bootstrap's cost is measured beside it (``--bootstrap 200``, the default of
``benchcal reduce``).
Run: .venv/bin/python benchmarks/bench_reduce.py [--benchmarks 100 --checkpoints 50 --repeat 3 --bootstrap 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchcal_reduce import ReduceOptions, load_table, reduce_table, write_outputs

SHOTS = (0, 1, 3, 5, 10)


def synthetic_table(benchmarks: int, checkpoints: int, seed: int = 0) -> pd.DataFrame:
    """A mix of rising, flat-at-chance and erratic benchmarks, binomial noise on n=1000."""
    rng = np.random.default_rng(seed)
    flops = np.logspace(19, 23, checkpoints)
    rows = []
    for b in range(benchmarks):
        base = [0.0, 0.25, 0.5][b % 3]
        kind = b % 4  # 0,1 rising, 2 at chance, 3 erratic
        for s in SHOTS:
            if kind in (0, 1):
                true = base + (0.9 - base) * np.linspace(0.05, 0.6, checkpoints) ** (1 + 0.1 * s)
            elif kind == 2:
                true = np.full(checkpoints, max(base, 0.01))
            else:
                true = np.clip(base + 0.2 + 0.15 * rng.standard_normal(checkpoints), 0.01, 0.99)
            acc = rng.binomial(1000, true) / 1000
            rows.append(
                pd.DataFrame(
                    {
                        "checkpoint": [f"ckpt{i:03d}" for i in range(checkpoints)],
                        "flops": flops,
                        "benchmark": f"bench{b:03d}",
                        "num_fewshot": s,
                        "accuracy": acc,
                        "n": 1000,
                        "random_baseline": base,
                        "category": f"cat{b % 6}",
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmarks", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=0, help="confidence redraws (0 = off, the timing goal)")
    args = ap.parse_args()
    # Registry look-ups pinned off: synthetic names are not in the registry.
    options = ReduceOptions(
        standard_shots=lambda n: None,
        category_of=lambda n: "",
        pre_calibration_shots=lambda n: None,
        bootstrap=args.bootstrap,
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "table.csv"
        synthetic_table(args.benchmarks, args.checkpoints).to_csv(csv, index=False)
        reduce_table(load_table(csv), options)  # warm caches (imports, null distributions)
        for _ in range(args.repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            table = load_table(csv)
            t1 = time.perf_counter()
            red = reduce_table(table, options)
            t2 = time.perf_counter()
            write_outputs(red, Path(tmp) / "out", figures=False)
            t3, c3 = time.perf_counter(), time.process_time()
            # cpu = this process's CPU time: on a shared machine wall time also counts the neighbours
            print(
                f"rows={len(table)} load={t1 - t0:.3f}s reduce={t2 - t1:.3f}s write={t3 - t2:.3f}s "
                f"total={t3 - t0:.3f}s cpu={c3 - c0:.3f}s bootstrap={args.bootstrap} "
                f"groups={red.classification['group'].value_counts().to_dict()}"
            )


if __name__ == "__main__":
    main()
