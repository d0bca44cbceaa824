"""Copy a model from an fsspec URL (``s3://bucket/ckpt/``, ``gs://.../model.gguf``) to local disk, once.

A directory URL copies the files loading needs (``identity.IDENTITY_FILES``: not optimizer
states); a file URL (a ``.gguf``) copies that file. The copy lands in
``$BENCHCAL_MODEL_CACHE/<hash of the URL>/`` (default ``$XDG_CACHE_HOME/benchcal/models``; in a pod
the ``/tmp`` volume), file by file through a temporary name, with a progress line every
``PROGRESS_EVERY_S``, a free-space check before and a size check after each file. Every file is
hashed while it streams, so the resume key costs no second read. A completed copy is recorded
with the remote sizes and ETags and reused while they match: one download per pod (or machine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from benchcal import storage
from benchcal.errors import BadInput
from benchcal_eval.identity import is_identity_file, record_sha256

log = logging.getLogger("benchcal.evaluate")

PROGRESS_EVERY_S = 10.0
MARKER = ".benchcal-fetched.json"
_CHUNK = 8 << 20


def model_cache_root() -> Path:
    explicit = os.environ.get("BENCHCAL_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "benchcal" / "models"


def _remote_files(url: str) -> tuple[bool, dict[str, dict[str, Any]]]:
    """(is a single file, name -> {path, size, etag}) of what to copy."""
    fs, path = storage.filesystem(url)
    fs.invalidate_cache()
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise BadInput(f"model URL {url!r} does not exist (or these credentials cannot see it)") from None
    if info.get("type") == "file":
        return True, {path.rstrip("/").rsplit("/", 1)[-1]: _entry(info)}
    entries = fs.ls(path, detail=True)
    files = {
        e["name"].rstrip("/").rsplit("/", 1)[-1]: _entry(e)
        for e in entries
        if e.get("type") == "file" and is_identity_file(e["name"].rstrip("/").rsplit("/", 1)[-1])
    }
    if "config.json" not in files:
        raise BadInput(
            f"model URL {url!r} is a directory without config.json (not a HF checkpoint directory)"
        )
    return False, files


def _entry(info: dict[str, Any]) -> dict[str, Any]:
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("generation") or ""
    return {"path": info["name"], "size": int(info.get("size") or 0), "etag": str(etag).strip('"')}


def _copy(fs: Any, remote: dict[str, Any], dest: Path, label: str) -> str:
    """Stream one file to ``dest`` (via a temp name), hashing it; returns its sha256."""
    tmp = dest.with_name(f".{dest.name}.partial")
    digest, done = hashlib.sha256(), 0
    start = last = time.monotonic()
    with fs.open(remote["path"], "rb", block_size=_CHUNK) as src, open(tmp, "wb") as out:
        while block := src.read(_CHUNK):
            out.write(block)
            digest.update(block)
            done += len(block)
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                rate = done / max(now - start, 1e-9)
                log.info("%s: %.0f/%.0f MB (%.1f MB/s)", label, done / 1e6, remote["size"] / 1e6, rate / 1e6)
    if done != remote["size"]:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{label}: copied {done} bytes, the store lists {remote['size']}; retry")
    os.replace(tmp, dest)
    return digest.hexdigest()


def fetch_model(url: str) -> Path:
    """The local copy of the model at ``url`` (a directory, or the .gguf file), downloading it if needed."""
    storage.check_driver(url, "--model")
    single, files = _remote_files(url)
    root = model_cache_root() / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    local = root / next(iter(files)) if single else root / "model"
    folder = local.parent if single else local
    want = {name: {"size": f["size"], "etag": f["etag"]} for name, f in files.items()}
    marker = folder / MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == want and all(
            (folder / n).stat().st_size == f["size"] for n, f in files.items()
        ):
            log.info("model %s: using the copy in %s", url, folder)
            return local
    except (OSError, ValueError):
        pass
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    total = sum(f["size"] for f in files.values())
    free = shutil.disk_usage(folder).free
    if free < total:
        raise BadInput(
            f"model {url}: {total / 1e9:.2f} GB to copy but only {free / 1e9:.2f} GB free in {folder}; "
            "give the evaluator's /tmp (or BENCHCAL_MODEL_CACHE) more space"
        )
    log.info("model %s: copying %d file(s), %.2f GB, to %s", url, len(files), total / 1e9, folder)
    fs, _ = storage.filesystem(url)
    start = time.monotonic()
    for name, remote in files.items():
        dest = folder / name
        sha = _copy(fs, remote, dest, f"{url} {name}")
        record_sha256(dest, sha)
    storage.write_text(marker, json.dumps(want, sort_keys=True))
    log.info("model %s: copied in %.1f s", url, time.monotonic() - start)
    return local
