"""Plain data passed between prompt building, tokenisation, the engine and the metrics.

Strings (``Instance``) are built by ``prompts``; token ids (``ScoreRequest``) by ``tokenize``;
the engine answers ``ScoreRequest`` with ``ScoreResult`` and ``GenerationRequest`` with text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CodeSpec:
    """What the sandbox needs to run a generated HumanEval-style completion."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    test_inputs: tuple[str, ...]
    test_outputs: tuple[str, ...]
    language: str = "python"


@dataclass(frozen=True)
class Instance:
    """One test example with its few-shot preamble already applied (text only).

    - language_modeling: one context, one continuation (the answer).
    - multiple_choice: one context, one continuation per choice, ``gold`` the right choice.
    - schema: one context per option, one shared continuation, ``gold`` the right context.
    - generation_task_with_answers: one context; ``answers`` the accepted answers; ``stop`` strings.
    - code_evaluation: one context (the prompt); ``code`` for the sandbox.
    """

    index: int  # row of the example in its data file (0-based)
    task_type: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...] = ()
    gold: int | None = None
    answers: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    cot_delimiter: str = ""
    code: CodeSpec | None = None
    category: str | None = None
    fewshot_indices: tuple[int, ...] = ()
    # prompt_string + few-shot examples: the common head of every context. llm-foundry tokenises it
    # on its own (with special tokens) and the rest without, so tokenisation needs the split.
    preamble: str = ""


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation`` after ``context`` (token ids). Requests with equal contexts share one pass."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass(frozen=True)
class ScoreResult:
    logprob: float  # sum of log p(continuation token | prefix) over the continuation
    n_tokens: int
    greedy: bool  # every continuation token was the argmax of its distribution


@dataclass(frozen=True)
class GenerationRequest:
    context: tuple[int, ...]
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    num_samples: int = 1  # >1 samples with temperature (code pass@k); 1 = greedy
    temperature: float = 0.0
    seed: int = 0


@dataclass
class EngineStats:
    """What a scoring call cost: for progress logs, results and benchmarks."""

    requests: int = 0
    rows: int = 0
    batches: int = 0
    computed_tokens: int = 0  # tokens run through the model (shared contexts counted once)
    request_tokens: int = 0  # sum over requests of len(context) + len(continuation)
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
