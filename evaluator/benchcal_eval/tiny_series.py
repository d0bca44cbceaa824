"""A tiny, real scaling series that benchcal builds itself: the embedded default of ``benchcal run``.

Five checkpoints of one small Llama-architecture model, trained from scratch on the CPU for
geometrically increasing token budgets (snapshots of one run, as in Pythia-style suites). The
training text is generated here with a fixed seed, in the gauntlet's own few-shot layout:

- bracket completion (the ``bigbench_dyck_languages`` format): a sequence of ``()[]{}<>`` and the
  closing brackets that balance it — learnable by a tiny model, so accuracy rises with training;
- two-operand integer addition and subtraction (the ``simple_arithmetic_withspaces`` format) —
  learnable only in part at this scale (the benchmark also holds multi-operand and
  multiplication problems the series never sees).

The series never sees English, so English benchmarks (copa, arc_easy) stay at chance: "noise"
for a real reason. Rows of the evaluation files are excluded from the training text, so the
series cannot have memorised the test examples.

Building is deterministic for a given torch version and thread count; the result is cached
(``BENCHCAL_CACHE`` or ``~/.cache/benchcal``) and built once under a file lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchcal.errors import BadInput

log = logging.getLogger(__name__)

SERIES_NAME = "tiny-series"
DYCK_PREFIX = (
    "Complete the rest of the sequence, making sure that the parentheses are closed properly. \n\nInput:"
)
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
ENGLISH_SEED = (
    "the a an and of to in is was it that for on with as at by this be are from or have not he she we you"
)


@dataclass(frozen=True)
class SeriesConfig:
    """Everything that determines the weights; its hash names the cache directory."""

    seed: int = 1234
    vocab_size: int = 512
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 256
    seq_len: int = 128
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    # checkpoint name -> optimizer steps; each budget doubles the previous one
    steps: tuple[tuple[str, int], ...] = (("s1", 25), ("s2", 50), ("s3", 100), ("s4", 200), ("s5", 400))
    corpus_examples: int = 40_000
    version: int = 1

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.batch_size


DEFAULT = SeriesConfig()


# ---- training text (pure) -----------------------------------------------------------------------


def dyck_example(rng: random.Random, max_len: int = 24) -> tuple[str, str]:
    """A bracket prefix with at least one bracket left open, and the closing brackets that balance it."""
    while True:
        stack: list[str] = []
        seq: list[str] = []
        for _ in range(rng.randint(2, max_len)):
            if stack and rng.random() < 0.45:
                seq.append(PAIRS[stack.pop()])
            else:
                opener = rng.choice(list(PAIRS))
                stack.append(opener)
                seq.append(opener)
        if stack:
            return " ".join(seq), " ".join(PAIRS[o] for o in reversed(stack))


def arithmetic_example(rng: random.Random) -> tuple[str, str]:
    a = rng.randint(0, 10 ** rng.randint(1, 3) - 1)
    b = rng.randint(0, 10 ** rng.randint(1, 3) - 1)
    op = rng.choice("+-")
    return f"{a} {op} {b} =", str(a + b if op == "+" else a - b)


def training_documents(cfg: SeriesConfig, exclude: Iterable[str] = ()) -> list[str]:
    """Documents of 1-11 examples in the few-shot layout llm-foundry uses for language_modeling
    (example delimiter ``\\n``, continuation delimiter ``" "``), never containing an excluded context."""
    rng = random.Random(cfg.seed)
    excluded = set(exclude)
    docs: list[str] = []
    made = 0
    while made < cfg.corpus_examples:
        kind = rng.random()
        lines = []
        for _ in range(rng.randint(1, 11)):
            if kind < 0.6:
                body, answer = dyck_example(rng)
                context = f"{DYCK_PREFIX} {body}\nOutput:"
            else:
                context, answer = arithmetic_example(rng)
            if context in excluded:
                continue
            lines.append(f"{context} {answer}")
            made += 1
        if lines:
            docs.append("\n".join(lines))
    return docs


def excluded_contexts() -> list[str]:
    """Contexts of the shipped evaluation rows the series must not train on."""
    from benchcal.tasks.loading import load_examples
    from benchcal.tasks.registry import get_task

    out: list[str] = []
    for name in ("bigbench_dyck_languages", "simple_arithmetic_withspaces"):
        try:
            out.extend(ex["context"] for ex in load_examples(get_task(name)))
        except BadInput as exc:  # a registry without this benchmark: nothing to exclude
            log.warning("tiny series: cannot read %s to exclude it from training: %s", name, exc)
    return out


# ---- building (I/O) -----------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("BENCHCAL_CACHE", Path.home() / ".cache" / "benchcal"))


def series_dir(cfg: SeriesConfig = DEFAULT) -> Path:
    return cache_root() / SERIES_NAME / cfg.key()


def checkpoint_names(cfg: SeriesConfig = DEFAULT) -> list[str]:
    return [name for name, _ in cfg.steps]


def ensure_model(name: str, cfg: SeriesConfig = DEFAULT) -> Path:
    """Path of checkpoint ``name`` ("s3" or "tiny-series/s3"), building the series if needed."""
    short = name.split("/", 1)[1] if name.startswith(SERIES_NAME + "/") else name
    if short not in checkpoint_names(cfg):
        raise BadInput(
            f"unknown built-in model {name!r}: choose one of "
            + ", ".join(f"{SERIES_NAME}/{n}" for n in checkpoint_names(cfg))
        )
    root = series_dir(cfg)
    if not (root / "series.json").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / f".{cfg.key()}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent local evaluators build it once
            if not (root / "series.json").exists():
                build_series(cfg, root)
    return root / short


def series_info(cfg: SeriesConfig = DEFAULT) -> dict:
    """Names, parameter count, tokens and training FLOPs (6·N·D) of every checkpoint (builds if needed)."""
    ensure_model(checkpoint_names(cfg)[0], cfg)
    return json.loads((series_dir(cfg) / "series.json").read_text())


def build_series(cfg: SeriesConfig, dest: Path) -> None:
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    started = time.time()
    docs = training_documents(cfg, excluded_contexts())
    log.info("tiny series: building %s (%d documents) into %s", cfg.key(), len(docs), dest)

    tok = Tokenizer(models.BPE(unk_token=None))
    # One token per digit (a leading space may stay attached) so arithmetic is learnable; a few common
    # English words make it a prefix-space tokenizer (" a" is one token), like GPT-2's, for llm-foundry's rule.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r" ?\d"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        docs[:5000] + [ENGLISH_SEED] * 50,
        trainers.BpeTrainer(
            vocab_size=cfg.vocab_size,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    hf_tok.model_max_length = 2048  # RoPE: longer few-shot prompts than the training windows are fine

    eos = hf_tok.eos_token_id
    stream: list[int] = []
    for doc in docs:
        stream.extend(hf_tok(doc)["input_ids"])
        stream.append(eos)
    data = torch.tensor(stream, dtype=torch.long)

    torch.manual_seed(cfg.seed)
    model_cfg = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = LlamaForCausalLM(model_cfg)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(cfg.seed)
    snapshots = dict((steps, name) for name, steps in cfg.steps)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    info = {
        "series": SERIES_NAME,
        "key": cfg.key(),
        "config": asdict(cfg),
        "params": params,
        "checkpoints": [],
    }
    model.train()
    for step in range(1, max(snapshots) + 1):
        starts = torch.randint(0, len(data) - cfg.seq_len - 1, (cfg.batch_size,), generator=gen)
        batch = torch.stack([data[s : s + cfg.seq_len] for s in starts.tolist()])
        for group in opt.param_groups:
            group["lr"] = cfg.learning_rate * min(1.0, step / cfg.warmup_steps)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step in snapshots:
            name = snapshots[step]
            model.save_pretrained(tmp / name)
            hf_tok.save_pretrained(tmp / name)
            tokens = step * cfg.tokens_per_step
            info["checkpoints"].append(
                {
                    "name": name,
                    "steps": step,
                    "tokens": tokens,
                    "flops": 6 * params * tokens,
                    "loss": round(loss.item(), 4),
                }
            )
            log.info("tiny series: %s at step %d, loss %.3f", name, step, loss.item())
    info["build_seconds"] = round(time.time() - started, 1)
    (tmp / "series.json").write_text(json.dumps(info, indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
