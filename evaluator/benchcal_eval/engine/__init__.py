"""Scoring engine: packed shared-context log-likelihood scoring and batched generation.

``packing`` (pure row packing), ``inputs`` (the padded tensors of a batch), ``attention`` (the
tree mask and the attention path; ``flex_attention`` on GPU), ``scoring`` (ScoringEngine),
``naive`` (one-request-at-a-time reference), ``generation`` (greedy / sampled decoding).
"""

from benchcal_eval.engine.naive import naive_score
from benchcal_eval.engine.scoring import ScoringEngine

__all__ = ["ScoringEngine", "naive_score"]
