"""benchcal evaluator: batched log-likelihood scoring of benchmarks (torch)."""
