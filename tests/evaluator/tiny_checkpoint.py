"""Test helpers: a tiny random Llama with its own BPE tokenizer, and a tiny benchmark task file.

Built in seconds on CPU so the runner and CLI tests exercise the real model-loading and scoring path.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

CORPUS = [
    "the cat sat on the mat", "a dog ran in the park", "question answer yes no",
    "one two three four five six seven eight nine ten", "red green blue yellow",
    "def add ( a , b ) : return a + b", "the answer is 42", "paris is in france",
]  # fmt: skip


def build_tiny_checkpoint(dest: Path) -> Path:
    """A 2-layer Llama (random weights, seed 0) and a byte-level BPE tokenizer saved as a HF directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    fast.save_pretrained(dest)
    return dest


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_tiny_tasks(dest: Path) -> Path:
    """A task file with one benchmark per scored task type (+ generation), and its data."""
    dest.mkdir(parents=True, exist_ok=True)
    _write_jsonl(dest / "mc.jsonl", [
        {"query": f"Question: what comes after {a}?", "choices": [b, c, d], "gold": i % 3}
        for i, (a, b, c, d) in enumerate([
            ("one", "two", "red", "cat"), ("two", "three", "blue", "dog"), ("three", "four", "mat", "park"),
            ("four", "five", "yes", "no"), ("five", "six", "the", "a"), ("six", "seven", "green", "paris"),
        ])
    ])  # fmt: skip
    _write_jsonl(dest / "lm.jsonl", [
        {"context": "the cat sat on the", "continuation": "mat"},
        {"context": "a dog ran in the", "continuation": "park"},
        {"context": "one two three", "continuation": "four five"},
        {"context": "paris is in", "continuation": "france"},
    ])  # fmt: skip
    _write_jsonl(dest / "schema.jsonl", [
        {"context_options": ["the cat sat", "the dog sat"], "continuation": "on the mat", "gold": 0},
        {"context_options": ["a dog ran", "a cat ran"], "continuation": "in the park", "gold": 0},
        {"context_options": ["red green", "one two"], "continuation": "three four", "gold": 1},
    ])  # fmt: skip
    _write_jsonl(dest / "gen.jsonl", [
        {"context": "Question: where is paris?\nAnswer:", "answer": "france", "aliases": ["in france"]},
        {"context": "Question: what is six times seven?\nAnswer:", "answer": "42"},
        {"context": "Question: the cat sat on the?\nAnswer:", "answer": "mat"},
    ])  # fmt: skip
    doc = {
        "benchmarks": [
            {"name": "tiny_mc", "category": "toy", "task_type": "multiple_choice", "data_file": "mc.jsonl",
             "random_baseline": 0.333, "continuation_delimiter": "\nAnswer: "},
            {"name": "tiny_lm", "category": "toy", "task_type": "language_modeling", "data_file": "lm.jsonl"},
            {"name": "tiny_schema", "category": "toy", "task_type": "schema", "data_file": "schema.jsonl",
             "random_baseline": 0.5},
            {"name": "tiny_gen", "category": "toy", "task_type": "generation_task_with_answers",
             "data_file": "gen.jsonl", "stop": ["\n"], "max_new_tokens": 4},
        ]
    }  # fmt: skip
    import yaml

    path = dest / "tasks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def tiny_checkpoint_dir() -> Path:
    """One tiny checkpoint per test process (removed at exit), shared by the runner and CLI tests."""
    root = Path(tempfile.mkdtemp(prefix="benchcal-tiny-"))
    atexit.register(shutil.rmtree, root, True)
    return build_tiny_checkpoint(root / "model")
