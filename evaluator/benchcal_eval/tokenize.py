"""Instances (text) -> token-id requests for the engine, following llm-foundry's tokenisation.

- The preamble (prompt_string + shots) is tokenised with special tokens (a trailing EOS dropped),
  the rest of the context and the continuation without; the pieces are concatenated, so token
  boundaries are forced between them and the continuation ids are exactly the answer's ids.
- Prefix-space tokenizers (``tok(" a")`` is one token: GPT-2/NeoX/tiktoken-style BPE) get a
  space before scored continuations; SentencePiece-style ones do not.
- Contexts are cut from the left so context + continuation fit ``max_length`` (generation: so
  the prompt leaves room for ``max_new_tokens``); the continuation is always kept whole.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchcal.errors import BadInput
from benchcal.tasks.registry import TaskSpec
from benchcal_eval.requests import GenerationRequest, Instance, ScoreRequest

ANSWER_BUFFER_TOKENS = 10  # llm-foundry's slack for chain-of-thought and code answers
CODE_TEMPERATURE = 0.2  # llm-foundry's sampling temperature for code_evaluation
# Stopping at these never changes the scored program: the code metric cuts each completion at the
# first newline followed by a letter, digit, '#' or '`', which comes at or before any of them.
CODE_STOP = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")
_BUDGETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {key: (rows, budget)}


@dataclass(frozen=True)
class Encoded:
    """Token-level work for one Instance."""

    requests: list[ScoreRequest]  # lm: 1; multiple_choice: one per choice; schema: one per context
    generation: GenerationRequest | None
    truncated: bool  # some context lost tokens on the left to fit max_length
    dropped_tokens: int = 0  # most context tokens dropped from any one request
    # UTF-8 bytes of each request's continuation text as tokenised (with any prefix space added):
    # the denominator of bits per byte
    continuation_bytes: tuple[int, ...] = ()


def _ids(tokenizer: Any, text: str | list[str], special: bool) -> Any:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


class _BatchedTokenizer:
    """Answers single-text calls from ids computed by one batched call (the Rust fast path)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = getattr(tokenizer, "eos_token_id", None)
        self.cache: dict[tuple[str, bool], list[int]] = {}

    def prefill(self, texts: Sequence[str], special: bool) -> None:
        todo = [t for t in dict.fromkeys(texts) if (t, special) not in self.cache]
        if todo:
            for text, ids in zip(todo, _ids(self.tokenizer, todo, special), strict=True):
                self.cache[(text, special)] = list(ids)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        key = (text, add_special_tokens)
        if key not in self.cache:
            self.cache[key] = list(_ids(self.tokenizer, text, add_special_tokens))
        return {"input_ids": self.cache[key]}


def needs_prefix_space(tokenizer: Any) -> bool:
    """True for GPT-2-style BPE, where ``" a"`` is a single token (llm-foundry's test)."""
    return len(_ids(tokenizer, " a", False)) == 1


def _preamble_ids(tokenizer: Any, preamble: str) -> list[int]:
    ids = list(_ids(tokenizer, preamble, True))
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and len(ids) > 1 and ids[-1] == eos:
        ids = ids[:-1]  # an EOS would sit in the middle of the prompt
    return ids


def _context_ids(tokenizer: Any, inst: Instance, context: str, preamble_ids: list[int]) -> list[int]:
    if not context.startswith(inst.preamble):
        raise ValueError(f"instance {inst.index}: context does not start with its preamble")
    return preamble_ids + list(_ids(tokenizer, context[len(inst.preamble) :], False))


def _with_prefix_space(text: str, prefix_space: bool) -> str:
    return f" {text}" if prefix_space and not text.startswith(" ") else text


def _fit(context: list[int], room: int, inst: Instance, what: str) -> tuple[list[int], int]:
    """Keep the last ``room`` context tokens; at least one must remain to condition on."""
    if room < 1:
        raise BadInput(
            f"example {inst.index}: the {what} leaves no room for context within --max-length; "
            "raise --max-length or lower max_new_tokens"
        )
    dropped = max(len(context) - room, 0)
    return context[dropped:], dropped


def generation_budget(task: TaskSpec, examples: Sequence[dict], tokenizer: Any) -> int:
    """max_new_tokens for a generation/code task, as llm-foundry derives it from the whole file.

    Generation: the longest ``[cot + cot_delimiter +] answer`` over every accepted answer (tokenised
    with special tokens), plus 10 if there is a cot_delimiter. Code: the longest canonical
    solution plus 10. A ``max_new_tokens`` set on the task wins.
    """
    if task.max_new_tokens is not None:
        return task.max_new_tokens
    # One pass over every answer of the file is costly (triviaqa: ~60k aliases); the runner asks
    # again for each shot count with the same rows object, so remember it per tokenizer.
    key = (task.task_type, task.cot_delimiter, id(examples))
    try:
        per_tokenizer = _BUDGETS.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no caching
        per_tokenizer = {}
    cached = per_tokenizer.get(key)
    if cached is None or cached[0] is not examples:  # holding the rows keeps their id unique
        cached = per_tokenizer[key] = (examples, _file_budget(task, examples, tokenizer))
    return cached[1]


def _file_budget(task: TaskSpec, examples: Sequence[dict], tokenizer: Any) -> int:
    if task.task_type == "code_evaluation":
        lengths = [len(ids) for ids in _ids(tokenizer, [r["canonical_solution"] for r in examples], False)]
        return max(lengths, default=0) + ANSWER_BUFFER_TOKENS
    if task.task_type != "generation_task_with_answers":
        raise ValueError(f"{task.name}: {task.task_type} tasks do not generate")
    has_cot = bool(examples) and "chain_of_thought" in examples[0]
    responses = []
    for row in examples:
        for answer in dict.fromkeys([row["answer"], *row.get("aliases", [])]):
            responses.append(f"{row['chain_of_thought']}{task.cot_delimiter}{answer}" if has_cot else answer)
    longest = max((len(ids) for ids in _ids(tokenizer, responses, True)), default=0)
    return max(longest + (ANSWER_BUFFER_TOKENS if task.cot_delimiter else 0), 1)


def _encode_generation(
    inst: Instance, context: list[int], max_length: int, max_new_tokens: int | None, num_samples: int
) -> tuple[GenerationRequest, int]:
    if inst.task_type == "code_evaluation":
        budget = max_new_tokens if max_new_tokens is not None else max(max_length - len(context), 1)
        budget = min(budget, max_length - 1)
        dropped = 0
        if len(context) + budget > max_length:
            if len(context) < max_length:  # the prompt fits: shrink the budget (composer 0.17)
                budget = max_length - len(context)
            else:  # the prompt alone is too long: cut it from the left
                context, dropped = _fit(context, max_length - budget, inst, "code budget")
        request = GenerationRequest(
            context=tuple(context),
            max_new_tokens=budget,
            stop=CODE_STOP,
            num_samples=num_samples,
            temperature=CODE_TEMPERATURE if num_samples > 1 else 0.0,
            seed=inst.index,
        )
        return request, dropped
    if max_new_tokens is None:  # the budget is a property of the whole file, not of one row
        raise ValueError("generation tasks need max_new_tokens; use generation_budget() or encode_task()")
    context, dropped = _fit(context, max_length - max_new_tokens, inst, "answer budget")
    return GenerationRequest(context=tuple(context), max_new_tokens=max_new_tokens, stop=inst.stop), dropped


def encode_instance(
    inst: Instance,
    tokenizer: Any,
    max_length: int,
    *,
    max_new_tokens: int | None = None,
    num_samples: int = 1,
    prefix_space: bool | None = None,
) -> Encoded:
    """Token ids for one Instance.

    ``max_new_tokens`` is required for generation tasks (``generation_budget`` computes
    llm-foundry's file-wide value; ``encode_task`` does it for you); for code it defaults to all
    room left after the prompt. ``num_samples`` > 1 samples code completions for pass@k.
    ``prefix_space`` defaults to ``needs_prefix_space(tokenizer)`` (pass it to save the check).
    """
    if max_length < 2:
        raise BadInput(f"max_length must be at least 2, got {max_length}")
    preamble_ids = _preamble_ids(tokenizer, inst.preamble)
    if inst.task_type in ("generation_task_with_answers", "code_evaluation"):
        context = _context_ids(tokenizer, inst, inst.contexts[0], preamble_ids)
        request, dropped = _encode_generation(inst, context, max_length, max_new_tokens, num_samples)
        return Encoded(requests=[], generation=request, truncated=dropped > 0, dropped_tokens=dropped)
    if prefix_space is None:
        prefix_space = needs_prefix_space(tokenizer)
    texts = [_with_prefix_space(c, prefix_space) for c in inst.continuations]
    continuations = [list(_ids(tokenizer, text, False)) for text in texts]
    text_bytes = [len(text.encode("utf-8")) for text in texts]
    contexts = [_context_ids(tokenizer, inst, c, preamble_ids) for c in inst.contexts]
    if inst.task_type == "schema":  # options differ in the context; one shared continuation
        pairs = [(ctx, continuations[0]) for ctx in contexts]
        text_bytes = text_bytes[:1] * len(contexts)
    else:  # language_modeling: one continuation; multiple_choice: one per choice
        pairs = [(contexts[0], cont) for cont in continuations]
    requests: list[ScoreRequest] = []
    most_dropped = 0
    shared: dict[tuple[int, int], tuple[int, ...]] = {}  # equal contexts share one tuple (memory)
    for ctx, cont in pairs:
        if not cont:
            raise BadInput(f"example {inst.index}: a continuation encodes to no tokens")
        kept, dropped = _fit(ctx, max_length - len(cont), inst, f"{len(cont)}-token continuation")
        most_dropped = max(most_dropped, dropped)
        context = shared.setdefault((id(ctx), dropped), tuple(kept))
        requests.append(ScoreRequest(context=context, continuation=tuple(cont)))
    return Encoded(
        requests=requests,
        generation=None,
        truncated=most_dropped > 0,
        dropped_tokens=most_dropped,
        continuation_bytes=tuple(text_bytes),
    )


def encode_task(
    task: TaskSpec,
    examples: Sequence[dict],
    instances: Sequence[Instance],
    tokenizer: Any,
    max_length: int,
    *,
    chunk: int = 256,
) -> list[Encoded]:
    """``encode_instance`` for every instance of one task, with the task's generation settings.

    Texts are tokenised in batches of ``chunk`` instances (one call per piece kind), which gives the
    same ids as one call per text but lets a fast tokenizer work in parallel, without its overhead.
    """
    budget = None
    if task.task_type in ("generation_task_with_answers", "code_evaluation"):
        budget = generation_budget(task, examples, tokenizer)
    prefix_space = needs_prefix_space(tokenizer)
    num_samples = task.generations_per_sample if task.task_type == "code_evaluation" else 1
    encoded: list[Encoded] = []
    for start in range(0, len(instances), chunk):
        batch = instances[start : start + chunk]
        cached = _BatchedTokenizer(tokenizer)  # per chunk: long prompts must not pile up in memory
        cached.prefill([inst.preamble for inst in batch], True)
        cached.prefill([c[len(inst.preamble) :] for inst in batch for c in inst.contexts], False)
        cached.prefill(
            [_with_prefix_space(c, prefix_space) for inst in batch for c in inst.continuations], False
        )
        encoded.extend(
            encode_instance(
                inst,
                cached,
                max_length,
                max_new_tokens=budget,
                num_samples=num_samples,
                prefix_space=prefix_space,
            )
            for inst in batch
        )
    return encoded
