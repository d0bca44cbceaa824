"""Tokenisation: prefix-space rule, context/continuation split, left truncation, generation budgets.

Tokenizers: the SmolLM2 GGUF's (tests/models.py), a GPT-2-style byte-level BPE and a
SentencePiece-style one (prepends its own word marker, adds BOS), both built here from a toy corpus.
"""

from __future__ import annotations

import dataclasses

import pytest

from benchcal.errors import BadInput
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import get_task
from benchcal_eval.prompts import build_instances
from benchcal_eval.tokenize import (
    ANSWER_BUFFER_TOKENS,
    CODE_STOP,
    CODE_TEMPERATURE,
    encode_instance,
    encode_task,
    generation_budget,
    needs_prefix_space,
)
from tests.evaluator.task_specs import spec
from tests.models import smollm2_tokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
    "Question: what is two plus two?\nAnswer: four",
    "The cat sat on the mat. a an the",
    "Paris is the capital of France. 2+2=4 3+3=6",
] * 5


def _byte_level_bpe(add_eos: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tk.train_from_iterator(CORPUS, trainer)
    if add_eos:  # some tokenizers (e.g. OPT-style templates) append EOS to every encoding
        eos = tk.token_to_id("<|endoftext|>")
        tk.post_processor = processors.TemplateProcessing(single="$A <|endoftext|>",
                                                          special_tokens=[("<|endoftext|>", eos)])  # fmt: skip
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>")


def _sentencepiece_style():
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Strip(" ", 1, 0)])
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789?:.+=\n▁")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False, initial_alphabet=alphabet)  # fmt: skip
    tk.train_from_iterator(CORPUS, trainer)
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def bpe():
    return _byte_level_bpe()


@pytest.fixture(scope="module")
def spm():
    return _sentencepiece_style()


@pytest.fixture(scope="session")
def smollm():
    return smollm2_tokenizer()


def ids(tok, text: str, special: bool = False) -> list[int]:
    return list(tok(text, add_special_tokens=special)["input_ids"])


LM_ROWS = [
    {"context": "2+2=", "continuation": "4"},
    {"context": "3+3=", "continuation": "6"},
]


def test_prefix_space_detection(bpe, spm, smollm):
    assert needs_prefix_space(bpe) is True
    assert needs_prefix_space(smollm) is True
    assert needs_prefix_space(spm) is False


def test_pieces_are_tokenised_separately_and_continuation_is_exactly_the_answer(bpe):
    task = spec("language_modeling", continuation_delimiter="\nAnswer: ")
    inst = build_instances(task, LM_ROWS, 1)[1]
    (req,) = encode_instance(inst, bpe, 512).requests
    rest = inst.contexts[0][len(inst.preamble) :]
    assert rest == "\n3+3=\nAnswer:"
    assert list(req.context) == ids(bpe, inst.preamble, True) + ids(bpe, rest)
    assert list(req.continuation) == ids(bpe, " 6")  # prefix space added for BPE
    assert bpe.decode(list(req.context) + list(req.continuation)) == inst.contexts[0] + " 6"


def test_sentencepiece_style_gets_no_prefix_space_and_one_bos(spm):
    inst = build_instances(spec("language_modeling"), LM_ROWS, 0)[0]
    (req,) = encode_instance(inst, spm, 512).requests
    assert list(req.continuation) == ids(spm, "4")
    bos = spm.bos_token_id
    assert req.context[0] == bos and list(req.context).count(bos) == 1  # empty preamble -> just BOS
    assert list(req.context) == [bos, *ids(spm, "2+2=")]


def test_smollm_zero_shot_context_is_the_plain_encoding(smollm):
    task = spec("language_modeling", continuation_delimiter="\nAnswer: ")
    inst = build_instances(task, LM_ROWS, 0)[0]
    (req,) = encode_instance(inst, smollm, 2048).requests
    assert list(req.context) == ids(smollm, "2+2=\nAnswer:")
    assert smollm.decode(list(req.continuation)) == " 4"


def test_trailing_eos_of_the_preamble_is_dropped():
    tok = _byte_level_bpe(add_eos=True)
    eos = tok.eos_token_id
    inst = build_instances(spec("language_modeling"), LM_ROWS, 1)[0]
    assert ids(tok, inst.preamble, True)[-1] == eos
    (req,) = encode_instance(inst, tok, 512).requests
    assert eos not in req.context
    assert list(req.context) == ids(tok, inst.preamble) + ids(tok, "\n2+2=")


def test_multiple_choice_and_schema_request_shapes(bpe):
    mc_rows = [{"query": "Sky?", "choices": ["blue", "green", "red"], "gold": 0}]
    mc = encode_instance(build_instances(spec("multiple_choice"), mc_rows, 0)[0], bpe, 512)
    assert [bpe.decode(list(r.continuation)) for r in mc.requests] == [" blue", " green", " red"]
    assert len({r.context for r in mc.requests}) == 1
    schema_rows = [{"context_options": ["The cat", "The mat"], "continuation": "sat.", "gold": 0}]
    sc = encode_instance(build_instances(spec("schema"), schema_rows, 0)[0], bpe, 512)
    assert [bpe.decode(list(r.context)) for r in sc.requests] == ["The cat", "The mat"]
    assert {bpe.decode(list(r.continuation)) for r in sc.requests} == {" sat."}


def test_left_truncation_keeps_the_whole_continuation(bpe):
    task = spec("language_modeling", continuation_delimiter="\nAnswer: ")
    inst = build_instances(task, LM_ROWS, 1)[0]
    full = encode_instance(inst, bpe, 512)
    assert not full.truncated and full.dropped_tokens == 0
    (whole,) = full.requests
    limit = len(whole.continuation) + 3
    cut = encode_instance(inst, bpe, limit)
    (req,) = cut.requests
    assert cut.truncated and cut.dropped_tokens == len(whole.context) - 3
    assert req.context == whole.context[-3:] and req.continuation == whole.continuation
    assert len(req.context) + len(req.continuation) == limit


def test_continuation_longer_than_max_length_is_bad_input(bpe):
    rows = [{"context": "a", "continuation": "The cat sat on the mat. Paris is the capital of France."}]
    inst = build_instances(spec("language_modeling"), rows, 0)[0]
    with pytest.raises(BadInput, match="max-length"):
        encode_instance(inst, bpe, 4)


COT_ROWS = [
    {"context": "two plus two?", "chain_of_thought": "2+2=4.", "answer": "4"},
    {"context": "three plus three?", "chain_of_thought": "3+3=6.", "answer": "6", "aliases": ["six"]},
]


def test_generation_budget_and_request(bpe):
    task = spec("generation_task_with_answers", continuation_delimiter="\nA:", cot_delimiter=" #### ",
                stop=("\n\n",))  # fmt: skip
    longest = max(len(ids(bpe, r, True)) for r in ["2+2=4. #### 4", "3+3=6. #### 6", "3+3=6. #### six"])
    assert generation_budget(task, COT_ROWS, bpe) == longest + ANSWER_BUFFER_TOKENS
    instances = build_instances(task, COT_ROWS, 1)
    enc = encode_task(task, COT_ROWS, instances, bpe, 512)[1]
    assert enc.requests == [] and enc.generation is not None
    gen = enc.generation
    assert gen.max_new_tokens == longest + ANSWER_BUFFER_TOKENS and gen.stop == ("\n\n",)
    assert bpe.decode(list(gen.context)) == instances[1].contexts[0]
    small = encode_task(task, COT_ROWS, instances, bpe, gen.max_new_tokens + 5)[1]
    assert small.truncated and len(small.generation.context) == 5
    with pytest.raises(ValueError, match="max_new_tokens"):
        encode_instance(instances[0], bpe, 512)


def test_task_max_new_tokens_overrides_the_derived_budget(bpe):
    task = spec("generation_task_with_answers", max_new_tokens=7)
    assert generation_budget(task, COT_ROWS, bpe) == 7


def test_code_request_samples_with_stop_strings(bpe):
    rows = [{"task_id": "T/0", "prompt": "def two():\n", "entry_point": "two", "canonical_solution": "    return 2\n",
             "test": "", "test_inputs": ["()"], "test_outputs": ["2"], "language": "python"}]  # fmt: skip
    task = spec("code_evaluation", generations_per_sample=5)
    (enc,) = encode_task(task, rows, build_instances(task, rows, 0), bpe, 512)
    gen = enc.generation
    assert list(gen.context) == ids(bpe, "def two():\n", True)
    assert gen.max_new_tokens == len(ids(bpe, "    return 2\n")) + ANSWER_BUFFER_TOKENS
    assert gen.num_samples == 5 and gen.temperature == CODE_TEMPERATURE and gen.stop == CODE_STOP


def test_real_mmlu_five_shot_with_smollm(smollm):
    task = get_task("mmlu")
    rows = load_examples(task)
    instances = build_instances(task, rows, 5, limit=3)
    encoded = encode_task(task, rows, instances, smollm, 2048)
    assert [len(e.requests) for e in encoded] == [4, 4, 4]
    assert [smollm.decode(list(r.continuation)) for r in encoded[0].requests] == [" A", " B", " C", " D"]
    again = encode_task(task, rows, build_instances(task, rows, 5, limit=3), smollm, 2048)
    assert again == encoded
    short = encode_task(dataclasses.replace(task), rows, instances, smollm, 64)
    assert all(e.truncated for e in short) and all(len(r.context) == 63 for e in short for r in e.requests)


def test_batched_task_encoding_equals_one_call_per_text(smollm):
    task = get_task("arc_challenge")
    rows = load_examples(task)
    instances = build_instances(task, rows, 3, limit=5)
    batched = encode_task(task, rows, instances, smollm, 256, chunk=2)
    assert batched == [encode_instance(inst, smollm, 256) for inst in instances]
    assert batched[0].requests[0].context is batched[0].requests[1].context  # shared, not copied


def test_code_budget_shrinks_to_fit_and_long_prompts_are_cut(bpe):
    rows = [{"task_id": "T/0", "prompt": "def two():\n", "entry_point": "two", "canonical_solution": "    return 2\n",
             "test": "", "test_inputs": ["()"], "test_outputs": ["2"], "language": "python"}]  # fmt: skip
    (inst,) = build_instances(spec("code_evaluation"), rows, 0)
    prompt = len(ids(bpe, "def two():\n", True))
    fits = encode_instance(inst, bpe, prompt + 3, max_new_tokens=50).generation
    assert len(fits.context) == prompt and fits.max_new_tokens == 3
    cut = encode_instance(inst, bpe, prompt, max_new_tokens=2)
    assert cut.truncated and len(cut.generation.context) == prompt - 2 and cut.generation.max_new_tokens == 2
    assert encode_instance(inst, bpe, 100).generation.max_new_tokens == 100 - prompt  # no budget: all room


def test_generation_budget_is_remembered_per_rows_object(bpe):
    task = spec("generation_task_with_answers", cot_delimiter=" #### ")
    rows = [dict(r) for r in COT_ROWS]
    first = generation_budget(task, rows, bpe)
    assert generation_budget(task, rows, bpe) == first
    longer = [*rows, {"context": "q", "chain_of_thought": "The cat sat on the mat. " * 4, "answer": "1"}]
    assert generation_budget(task, longer, bpe) > first  # other rows: computed afresh
