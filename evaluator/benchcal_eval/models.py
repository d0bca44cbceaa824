"""Loading a causal LM + tokenizer from wherever a checkpoint lives, with an identity for resume keys.

Sources (``resolve_model``), tried in this order:
- ``builtin:tiny-series/<name>``: the series ``benchcal_eval.tiny_series`` builds and caches;
- an fsspec URL (``s3://``, ``gs://``, ...): copied to local disk once (``benchcal_eval.fetch``);
- an existing local path (or ``file://``): a HF model directory, or a ``.gguf`` file
  (transformers dequantizes it);
- anything that looks like a path but does not exist: ``BadInput`` (never a hub lookup);
- otherwise a hub id (``org/name``) at ``revision``, resolved to a commit and loaded at it;
  ``HF_HUB_OFFLINE=1`` is honoured, and a model missing from the cache becomes ``BadInput``
  saying how to get it there.

The identity (``benchcal_eval.identity``) is resolved before any weights are loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchcal import storage
from benchcal.errors import BadInput
from benchcal_eval.identity import BUILTIN_PREFIX, ModelIdentity, hub_identity, local_identity

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}  # fmt: skip
FALLBACK_MAX_LENGTH = 2048


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel, eval mode, on ``device``
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    max_length: int
    identity: dict[str, Any] = field(
        default_factory=dict
    )  # for the summary (identity.record + dtype, device)
    key: dict[str, Any] = field(default_factory=dict)  # the model part of every resume key


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise BadInput(f"--device {device!r} is not a torch device (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"--device {device!r} asked for CUDA, but no CUDA device is visible; use --device cpu")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA (the accelerator's native format), fp32 on CPU (bf16 matmuls are slow there)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise BadInput(f"--dtype {dtype!r} is not supported; use auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", "./", "../", "~"))
        or source.endswith(".gguf")
        or source.count("/") > 1
        or (os.sep != "/" and os.sep in source)
    )


def config_max_length(config: Any, tokenizer: Any) -> int:
    """Longest input the model was trained for: config first, then a sane tokenizer limit."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:  # HF uses ~1e30 for "unset"
        return tok_max
    return FALLBACK_MAX_LENGTH


def _from_pretrained(location: str, *, gguf_file: str | None, dtype: torch.dtype, revision: str | None,
                     trust_remote_code: bool) -> tuple[Any, Any]:  # fmt: skip
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file is not None:
        common["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(location, **common)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, attn_implementation="sdpa", **common)
    return model, tokenizer


def resolve_model(source: str, revision: str | None = None) -> ModelIdentity:
    """Find the model and say what it is (hashing, fetching or resolving; never loading weights)."""
    if source.startswith(BUILTIN_PREFIX):
        from benchcal_eval.tiny_series import ensure_model

        return local_identity(source, Path(ensure_model(source[len(BUILTIN_PREFIX) :])), "builtin")
    if storage.is_url(source):
        from benchcal_eval.fetch import fetch_model

        return local_identity(source, fetch_model(source), "dir")
    path = storage.local_path(source).expanduser()
    if path.exists():
        return local_identity(source, path, "dir")
    if _looks_like_path(source) or source.lower().startswith("file://"):
        raise BadInput(f"model path {source!r} does not exist; check the path (or the volume mounting it)")
    return hub_identity(source, revision)


def load_model(
    source: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
    identity: ModelIdentity | None = None,
) -> LoadedModel:
    """Load ``source`` (see module docstring) for inference, in eval mode on the chosen device."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    ident = identity or resolve_model(source, revision)
    if ident.kind == "hub":
        # at the resolved commit: the weights are the ones the identity names, even if a branch moves
        model, tokenizer = _load_from_hub(ident.location, torch_dtype, ident.revision, trust_remote_code)
    else:
        path = Path(ident.location)
        location, gguf_file = (
            (str(path.parent), path.name) if ident.kind == "gguf" or path.is_file() else (str(path), None)
        )
        model, tokenizer = _from_pretrained(
            location,
            gguf_file=gguf_file,
            dtype=torch_dtype,
            revision=None,
            trust_remote_code=trust_remote_code,
        )
    model.to(dev)
    model.eval()
    dtype_name = str(torch_dtype).removeprefix("torch.")
    record = {**ident.record(), "dtype": dtype_name, "device": str(dev)}
    return LoadedModel(
        model,
        tokenizer,
        dev,
        torch_dtype,
        config_max_length(model.config, tokenizer),
        record,
        ident.key(dtype_name),
    )


def _load_from_hub(
    source: str, dtype: torch.dtype, revision: str | None, trust_remote_code: bool
) -> tuple[Any, Any]:
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return _from_pretrained(
            source, gguf_file=None, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        where = "the local HF cache (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub"
        at = f" at revision {revision!r}" if revision else ""
        raise BadInput(
            f"model {source!r}{at} could not be loaded from {where}: {str(exc).splitlines()[0]}. "
            "Pass a local path, download it into HF_HOME first, or check the id and revision."
        ) from exc
