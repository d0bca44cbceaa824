"""benchcal reducer: classify benchmarks against training FLOPs (pandas/scipy).

Public API: ``load_table`` -> ``reduce_table`` -> ``write_outputs`` / ``status_summary``.
"""

from benchcal_reduce.reduce import ReduceOptions, Reduction, reduce_table
from benchcal_reduce.report import results_ref, status_summary, write_outputs
from benchcal_reduce.table import load_table, table_from_summaries

__all__ = [
    "ReduceOptions",
    "Reduction",
    "load_table",
    "reduce_table",
    "results_ref",
    "status_summary",
    "table_from_summaries",
    "write_outputs",
]
