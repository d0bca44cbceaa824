"""The batched log-likelihood scorer: one token trie over all requests in, one ScoreResult each out.

``score_groups`` takes every group's requests at once (the runner: every (benchmark, shots) pair
of a checkpoint), builds one trie over all of them so each distinct token prefix is computed once
(``engine.trie``, ``engine.packing``), and calls ``on_done`` for a group as soon as its last
request is scored. Per batch: run the decoder body (no LM head) on the packed rows with the tree
mask, gather the hidden states of the positions that predict continuation tokens, score only those
through the fused LM-head op (``kernels.lm_head_logprobs``), reduce per scorer on the device, and
copy the per-scorer sums and greedy-miss counts to the host once. No ``[batch, time, vocab]`` tensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from benchcal_eval.engine.attention import resolve_attention
from benchcal_eval.engine.inputs import AttentionInputs
from benchcal_eval.engine.packing import pack_requests
from benchcal_eval.kernels import lm_head_logprobs
from benchcal_eval.requests import EngineStats, GenerationRequest, ScoreRequest, ScoreResult

Progress = Callable[[int], None]  # called with the number of requests just finished (tqdm.update)
OnDone = Callable[[int, list[ScoreResult]], None]  # (group index, its results in request order)

# Tokens per forward when the caller gives no budget; GPU: large enough to fill the device for a
# ~3B model. Unrelated pieces share rows up to DEFAULT_ROW_TOKENS; a shared tree may fill a budget.
DEFAULT_TOKEN_BUDGET = {"cpu": 2048, "cuda": 32768}
DEFAULT_ROW_TOKENS = {"cpu": 256, "cuda": 4096}


@dataclass(frozen=True)
class HeadSpec:
    """Everything after the decoder body: final projection and the family's logit transforms."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    scale: float | None
    softcap: float | None


def _config_value(config: Any, *names: str) -> float | None:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return float(value)
    return None


def head_spec(model: Any) -> HeadSpec:
    """Read the LM head and final-logit transforms the HF forward would apply after the body.

    Gemma-2/3: ``final_logit_softcapping``; Cohere: logits * ``logit_scale``;
    Granite: logits / ``logits_scaling``.
    """
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        raise ValueError(f"{type(model).__name__} has no output embedding (LM head) to score with")
    config = model.config
    scale = _config_value(config, "logit_scale")
    granite = _config_value(config, "logits_scaling")
    if granite is not None and granite != 1.0:
        scale = (scale or 1.0) / granite
    softcap = _config_value(config, "final_logit_softcapping")
    return HeadSpec(head.weight, getattr(head, "bias", None), scale, softcap)


def decoder_body(model: Any) -> Any:
    """The transformer without its LM head (returns last_hidden_state)."""
    get_decoder = getattr(model, "get_decoder", None)
    body = get_decoder() if callable(get_decoder) else None
    return body if body is not None else model.base_model


class ScoringEngine:
    """Scores ScoreRequests (and runs generation) for one loaded model.

    ``token_budget``: padded tokens per forward; ``row_tokens``: tokens per packed row (several
    trie pieces share a row up to this; a piece whose paths share a real prefix may be as long as
    the budget and gets a row of its own). ``kernel``: LM-head implementation passed to
    ``lm_head_logprobs`` (None = auto). ``attention``: mask builder, see ``engine.attention``.
    """

    def __init__(
        self,
        lm: Any,
        *,
        token_budget: int | None = None,
        kernel: str | None = None,
        row_tokens: int | None = None,
        attention: str = "auto",
    ) -> None:
        self.lm = lm
        self.device = torch.device(lm.device)
        kind = "cuda" if self.device.type == "cuda" else "cpu"
        self.token_budget = int(token_budget or DEFAULT_TOKEN_BUDGET[kind])
        rows = int(row_tokens or min(DEFAULT_ROW_TOKENS[kind], self.token_budget))
        self.row_tokens = min(rows, self.token_budget)
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {self.token_budget}")
        self.kernel = kernel
        self.build_inputs = resolve_attention(attention, self.device, lm.model.config)
        # a builder that runs each batch as one unpadded sequence wants one row per batch
        self.flat_rows = bool(getattr(self.build_inputs, "flat_rows", False))
        # A builder may need a matching HF attention implementation (flex: a BlockMask); the model
        # is switched only while scoring (see _attention_implementation), generation keeps its own.
        self.body = decoder_body(lm.model)
        self.head = head_spec(lm.model)
        self.mask_dtype = next(lm.model.parameters()).dtype
        self.stats = EngineStats()

    def score(self, requests: Sequence[ScoreRequest], progress: Progress | None = None) -> list[ScoreResult]:
        """One ScoreResult per request, in request order."""
        return self.score_groups([requests], progress=progress)[0]

    def score_groups(
        self,
        groups: Sequence[Sequence[ScoreRequest]],
        *,
        progress: Progress | None = None,
        on_done: OnDone | None = None,
    ) -> list[list[ScoreResult]]:
        """Score every group's requests in one pass; one result list per group, in request order.

        All requests share one trie, so a prefix common to several groups (few-shot examples
        across shot counts, a question asked at several shot counts) is computed once. Work is
        scheduled by group index: group ``g`` is complete once the pieces serving groups ``<= g``
        have run, and ``on_done(g, results)`` is called right after the batch that completes it
        (an empty group at once). ``progress(n)`` is called after each batch with the number of
        requests it completed. An exception from ``on_done`` stops scoring and propagates.
        """
        start = time.perf_counter()
        with self._attention_implementation():
            results = self._score(groups, progress, on_done)
        self.stats.seconds += time.perf_counter() - start
        return results

    @contextmanager
    def _attention_implementation(self) -> Iterator[None]:
        """Switch the model to the attention implementation the mask builder targets, then back."""
        wanted = getattr(self.build_inputs, "attn_implementation", None)
        model = self.lm.model
        current = getattr(model.config, "_attn_implementation", None)
        if wanted is None or wanted == current:
            yield
            return
        model.set_attn_implementation(wanted)
        try:
            yield
        finally:
            model.set_attn_implementation(current)

    def _score(
        self, groups: Sequence[Sequence[ScoreRequest]], progress: Progress | None, on_done: OnDone | None
    ) -> list[list[ScoreResult]]:
        requests = [r for g in groups for r in g]
        group_of = [g for g, members in enumerate(groups) for _ in members]
        packing = pack_requests(
            requests,
            row_tokens=self.row_tokens,
            token_budget=self.token_budget,
            max_length=self.lm.max_length,
            groups=group_of if len(groups) > 1 else None,
            flat=self.flat_rows,
        )
        offsets = [0]
        for members in groups:
            offsets.append(offsets[-1] + len(members))
        results: list[ScoreResult | None] = [None] * len(requests)
        left = [len(members) for members in groups]  # requests of each group not yet scored

        def finish(g: int) -> None:
            if on_done is not None:
                on_done(g, results[offsets[g] : offsets[g + 1]])  # type: ignore[arg-type]

        for g in range(len(groups)):
            if left[g] == 0:
                finish(g)
        for batch in packing.batches:
            inputs = self.build_inputs(batch, self.device, self.mask_dtype)
            sums, misses = self._run_batch(inputs)
            completed: list[int] = []
            done = 0
            for slot, index in enumerate(inputs.owner_ids):  # every scorer lies in one batch
                scorer = packing.scorers[index]
                res = ScoreResult(
                    logprob=sums[slot], n_tokens=len(scorer.continuation), greedy=misses[slot] == 0
                )
                for i in scorer.requests:
                    results[i] = res
                    g = group_of[i]
                    left[g] -= 1
                    if left[g] == 0:
                        completed.append(g)
                done += len(scorer.requests)
            self.stats.batches += 1
            self.stats.rows += len(batch)
            self.stats.computed_tokens += inputs.n_tokens
            self.stats.extra["scored_positions"] = self.stats.extra.get("scored_positions", 0) + len(
                inputs.targets
            )
            if progress is not None:
                progress(done)
            # how many groups this batch completes (a caller splitting the batch's cost among them)
            self.stats.extra["groups_completed_by_batch"] = len(completed)
            for g in sorted(completed):
                finish(g)
        if any(r is None for r in results):  # a packing bug, never a silent zero
            raise RuntimeError("scoring engine: some requests were not scored by any batch")
        self.stats.requests += len(requests)
        self.stats.request_tokens += sum(len(r.context) + len(r.continuation) for r in requests)
        self.stats.extra["trie_tokens"] = self.stats.extra.get("trie_tokens", 0) + packing.trie_tokens
        self.stats.extra["truncated_requests"] = self.stats.extra.get("truncated_requests", 0) + len(
            packing.truncated
        )
        return [results[offsets[g] : offsets[g + 1]] for g in range(len(groups))]  # type: ignore[misc]

    @torch.inference_mode()
    def _run_batch(self, inputs: AttentionInputs) -> tuple[list[float], list[float]]:
        out = self.body(
            input_ids=inputs.input_ids,
            attention_mask=inputs.attention_mask,
            position_ids=inputs.position_ids,
            use_cache=False,
            **inputs.model_kwargs,
        )
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        flat = hidden.reshape(-1, hidden.shape[-1]).index_select(0, inputs.score_index)
        head = self.head
        logprob, greedy = lm_head_logprobs(
            flat,
            head.weight,
            inputs.targets,
            head.bias,
            scale=head.scale,
            softcap=head.softcap,
            impl=self.kernel,
        )
        k = len(inputs.owner_ids)
        per_scorer = torch.zeros(2, k, dtype=torch.float64, device=flat.device)
        per_scorer[0].index_add_(0, inputs.owners, logprob.double()[inputs.pair_index])
        per_scorer[1].index_add_(0, inputs.owners, (~greedy).double()[inputs.pair_index])
        sums, misses = per_scorer.tolist()  # the one device->host readback of the batch
        return sums, misses

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[list[str]]:
        """``num_samples`` decoded continuations per request, each cut at its first stop string."""
        from benchcal_eval.engine.generation import generate

        start = time.perf_counter()
        out = generate(self.lm, requests, token_budget=self.token_budget, progress=progress)
        self.stats.extra["generation_requests"] = self.stats.extra.get("generation_requests", 0) + len(
            requests
        )
        self.stats.seconds += time.perf_counter() - start
        return out
