"""What a checkpoint *is*, by content: the model part of every resume key.

- a local HF directory (and a built-in tiny-series model, and a directory fetched from a URL):
  the SHA-256 of every file that loading reads (``IDENTITY_FILES``: config, weights, tokenizer,
  remote code), combined into one ``content_sha256``; where the directory lives does not matter;
- a GGUF file: its SHA-256 (weights and tokenizer are inside);
- a hub id: the id and the commit its revision resolves to (a commit names the whole repository
  state), resolved before loading and then loaded at that commit.

File hashes are computed once per file and cached by (real path, device, inode, size, mtime,
ctime) in ``$BENCHCAL_HASH_CACHE`` (default ``$XDG_CACHE_HOME/benchcal/file-hashes.json``), so a
re-run of a large checkpoint does not read it again; any write to a file changes its ctime, and a
replaced file has a new inode. Computed before the model is loaded, so a checkpoint whose pairs
are all finished is never loaded at all.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchcal import storage
from benchcal.errors import BadInput

log = logging.getLogger("benchcal.evaluate")

BUILTIN_PREFIX = "builtin:"
# Files of a model directory whose content is the model (what transformers reads to load it).
# Not: optimizer/scheduler states, trainer_state.json, training_args.bin, READMEs, logs.
IDENTITY_FILES = (
    "config.json", "generation_config.json",
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model*.bin.index.json",
    "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab*", "merges.txt",
    "*.tiktoken", "spiece.model", "sentencepiece*.model", "chat_template*", "*.py",
)  # fmt: skip
CACHE_MAX_ENTRIES = 20_000
_CHUNK = 8 << 20
_cache_lock = threading.Lock()


def is_identity_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in IDENTITY_FILES)


# ---- the file-hash cache -------------------------------------------------------------------------


def hash_cache_path() -> Path:
    explicit = os.environ.get("BENCHCAL_HASH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "benchcal" / "file-hashes.json"


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{os.path.realpath(path)}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _load_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _remember(path: Path, sha256: str) -> None:
    """Add one entry (merging with what other processes wrote meanwhile); a cache is best effort."""
    where = hash_cache_path()
    with _cache_lock:
        try:
            entries = _load_cache(where)
            entries.pop(_stat_key(path), None)
            entries[_stat_key(path)] = sha256  # most recent last: the oldest are dropped first
            kept = dict(list(entries.items())[-CACHE_MAX_ENTRIES:])
            storage.write_text(where, json.dumps(kept, indent=0))
        except OSError as exc:
            log.warning("file-hash cache %s not writable (%s): large checkpoints are re-hashed", where, exc)


def cached_sha256(path: Path) -> str | None:
    return _load_cache(hash_cache_path()).get(_stat_key(path))


def record_sha256(path: Path, sha256: str) -> None:
    """A hash computed elsewhere (while downloading the file): later runs need not read it again."""
    _remember(path, sha256)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read at most once per version of the file (the cache above)."""
    path = Path(path)
    hit = cached_sha256(path)
    if hit is not None:
        return hit
    start, digest, size = time.monotonic(), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
            size += len(block)
    seconds = time.monotonic() - start
    if size >= 64 << 20:
        log.info("hashed %s: %.0f MB in %.1f s (cached for re-runs)", path.name, size / 1e6, seconds)
    sha = digest.hexdigest()
    _remember(path, sha)
    return sha


# ---- model identity ------------------------------------------------------------------------------


@dataclass
class ModelIdentity:
    """Where a model is loaded from, and what it is (``key()`` goes into every resume key)."""

    source: str  # what the user gave (--model)
    kind: str  # dir | gguf | hub | builtin
    location: str  # what transformers loads: a local directory, a .gguf file, or the hub id
    content_sha256: str = ""  # dir, gguf, builtin: the content
    revision: str = ""  # hub: the resolved commit
    files: dict[str, str] = field(default_factory=dict)  # dir: name -> sha256

    def key(self, dtype: str) -> dict[str, Any]:
        if self.kind == "hub":
            return {"hub": self.location, "revision": self.revision, "dtype": dtype}
        return {"content_sha256": self.content_sha256, "dtype": dtype}

    def record(self) -> dict[str, Any]:
        """For the summary (``CheckpointSummary.model``)."""
        out: dict[str, Any] = {"source": self.source, "kind": self.kind}
        if self.content_sha256:
            out["content_sha256"] = self.content_sha256
        if self.revision:
            out["revision"] = self.revision
        if self.files:
            out["files"] = dict(self.files)
        return out


def directory_identity(path: Path) -> tuple[str, dict[str, str]]:
    """(combined content hash, per-file hashes) of a model directory's identity files."""
    files = {
        f.name: file_sha256(f) for f in sorted(path.iterdir()) if f.is_file() and is_identity_file(f.name)
    }
    if "config.json" not in files:
        raise BadInput(f"model directory {str(path)!r} has no config.json; is it a HF checkpoint directory?")
    combined = hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in files.items()).encode())
    return combined.hexdigest(), files


def local_identity(source: str, path: Path, kind: str) -> ModelIdentity:
    if path.is_file():
        if path.suffix != ".gguf":
            raise BadInput(
                f"model file {source!r} is not a .gguf file; pass a HF model directory or a GGUF file"
            )
        return ModelIdentity(source, "gguf" if kind == "dir" else kind, str(path), file_sha256(path))
    content, files = directory_identity(path)
    return ModelIdentity(source, kind, str(path), content, files=files)


def hub_identity(source: str, revision: str | None) -> ModelIdentity:
    """The commit ``revision`` (default: main) resolves to, from the hub or the local HF cache."""
    from huggingface_hub import hf_hub_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        config = Path(hf_hub_download(source, "config.json", revision=revision))
    except Exception as exc:  # hub errors are many (offline, 404, auth, network): all bad input here
        where = "the local HF cache (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub"
        at = f" at revision {revision!r}" if revision else ""
        raise BadInput(
            f"model {source!r}{at} could not be loaded from {where}: {str(exc).splitlines()[0]}. "
            "Pass a local path, download it into HF_HOME first, or check the id and revision."
        ) from exc
    commit = config.parent.name  # <HF cache>/models--org--name/snapshots/<commit>/config.json
    return ModelIdentity(source, "hub", source, revision=commit)
