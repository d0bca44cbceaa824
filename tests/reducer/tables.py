"""Hand-made long tables for the reducer tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from benchcal_reduce.reduce import ReduceOptions
from benchcal_reduce.table import validate_table


def make_table(
    series: Mapping[tuple[str, int], Sequence[float]],
    flops: Sequence[float] | None = None,
    n: int | Mapping[str, int] = 1000,
    baseline: float | Mapping[str, float] = 0.25,
    category: str = "cat",
) -> pd.DataFrame:
    """Long rows from {(benchmark, shots): accuracies in FLOPs order}."""
    rows = []
    for (bench, shots), accs in series.items():
        fl = flops or [10.0 ** (18 + i) for i in range(len(accs))]
        for i, acc in enumerate(accs):
            rows.append(
                {
                    "checkpoint": f"c{i}",
                    "flops": fl[i],
                    "benchmark": bench,
                    "num_fewshot": shots,
                    "accuracy": acc,
                    "n": n[bench] if isinstance(n, Mapping) else n,
                    "random_baseline": baseline[bench] if isinstance(baseline, Mapping) else baseline,
                    "category": category,
                }
            )
    return pd.DataFrame(rows)


def valid(df: pd.DataFrame) -> pd.DataFrame:
    return validate_table(df, "test")


def pinned_options(standard: Mapping[str, int] | None = None, **kw) -> ReduceOptions:
    """Options that do not consult the real registry (deterministic tie-breaks)."""
    std = dict(standard or {})
    return ReduceOptions(
        standard_shots=lambda name: std.get(name),
        category_of=lambda name: "",
        pre_calibration_shots=lambda name: None,
        **kw,
    )
