"""Scoring engine: prefix-trie log-likelihood scoring and batched generation.

``trie`` (one token trie over all requests, cut into pieces), ``packing`` (pieces into rows and
batches), ``inputs`` (the padded tensors of a batch), ``attention`` (the tree mask rule, dense mask,
path choice), ``tree_attention`` (CPU: chunked ancestor attention), ``flex_attention`` (CUDA:
BlockMask), ``scoring`` (ScoringEngine),
``naive`` (one-request-at-a-time reference), ``generation`` (greedy / sampled decoding).
"""

from benchcal_eval.engine.naive import naive_score
from benchcal_eval.engine.scoring import ScoringEngine

__all__ = ["ScoringEngine", "naive_score"]
