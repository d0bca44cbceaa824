"""benchcal reducer: classify benchmarks against training FLOPs (pandas/scipy)."""
