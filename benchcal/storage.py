"""Where results live: a local directory or an fsspec URL (``s3://``, ``gs://``, ...), one small API.

A location is a ``Path`` or a string. Local ones (a path, or ``file://PATH``) use the OS; URLs go
through fsspec with the protocol's driver (``s3fs`` for s3://, ``gcsfs`` for gs://: the extras
``benchcal[s3]`` and ``benchcal[gcs]``), imported only when a URL is used, so the core stays light.
Credentials come from the driver's usual places: the environment (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL`` for S3-compatible servers, ``GOOGLE_APPLICATION_CREDENTIALS``), a mounted
Secret, or the pod's workload identity (docs/storage.md).

Every write is atomic as a reader sees it: locally a temp file and a rename; on an object store a
single PUT (or a multipart upload, completed only at the end) of the whole object, which is
visible whole or not at all; on other fsspec filesystems a temp name and a move. A process killed
mid-write therefore never leaves a torn result, wherever the results are.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from benchcal.errors import BadInput

Location = str | Path

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# protocol -> (import name of its fsspec driver, the benchcal extra that installs it)
DRIVERS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
# Stores where one PUT of a whole object is atomic (no rename exists there).
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})


def protocol(loc: Location) -> str:
    """``""`` for local locations, else the URL's scheme (lower case)."""
    if isinstance(loc, Path):
        return ""
    m = _URL.match(loc)
    if not m or m.group(1).lower() == "file":
        return ""
    return m.group(1).lower()


def is_url(loc: Location) -> bool:
    return protocol(loc) != ""


def local_path(loc: Location) -> Path:
    """The path of a local location (``file://`` stripped)."""
    if isinstance(loc, Path):
        return loc
    if loc.lower().startswith("file://"):
        return Path(loc[len("file://") :])
    return Path(loc)


def join(loc: Location, *parts: str) -> Location:
    """``loc / part / ...``: a ``Path`` for paths, a '/'-joined string for strings (URLs included)."""
    if isinstance(loc, Path):
        return loc.joinpath(*parts)
    return "/".join([loc.rstrip("/"), *parts])


def check_driver(loc: Location, what: str = "location") -> None:
    """``BadInput`` naming the extra to install when a URL's fsspec driver is missing."""
    proto = protocol(loc)
    if not proto:
        return
    try:
        import fsspec
    except ImportError:
        extra = DRIVERS.get(proto, ("", "s3"))[1]
        raise BadInput(
            f"{what} {loc!r}: URLs need fsspec; install it with pip install 'benchcal[{extra}]'"
        ) from None
    try:
        fsspec.get_filesystem_class(proto)
    except (ImportError, ValueError) as exc:
        module, extra = DRIVERS.get(proto, (proto, ""))
        hint = f"pip install 'benchcal[{extra}]'" if extra else f"install the fsspec driver for {proto}://"
        raise BadInput(
            f"{what} {loc!r}: the {proto}:// driver ({module}) is not installed: {hint} ({exc})"
        ) from None


def filesystem(loc: Location) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL."""
    check_driver(loc)
    import fsspec.core

    return fsspec.core.url_to_fs(str(loc))


def _fresh(loc: Location) -> tuple[Any, str]:
    fs, path = filesystem(loc)
    fs.invalidate_cache()  # other processes write here too: never trust a cached listing
    return fs, path


# ---- reading -------------------------------------------------------------------------------------


def read_bytes(loc: Location) -> bytes:
    """The content of a file; ``FileNotFoundError`` when there is none."""
    if not is_url(loc):
        return local_path(loc).read_bytes()
    fs, path = _fresh(loc)
    return fs.cat_file(path)


def read_text(loc: Location) -> str:
    return read_bytes(loc).decode("utf-8")


def exists(loc: Location) -> bool:
    if not is_url(loc):
        return local_path(loc).exists()
    fs, path = _fresh(loc)
    return fs.exists(path)


def is_file(loc: Location) -> bool:
    if not is_url(loc):
        return local_path(loc).is_file()
    fs, path = _fresh(loc)
    return fs.isfile(path)


def is_dir(loc: Location) -> bool:
    if not is_url(loc):
        return local_path(loc).is_dir()
    fs, path = _fresh(loc)
    return fs.isdir(path)


def list_dir(loc: Location) -> list[str]:
    """Names of the entries directly under ``loc`` (sorted; empty when it does not exist)."""
    if not is_url(loc):
        path = local_path(loc)
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    fs, path = _fresh(loc)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries} - {""})


# ---- writing -------------------------------------------------------------------------------------


def write_bytes(loc: Location, data: bytes) -> None:
    """Write a whole file atomically (see the module docstring)."""
    if not is_url(loc):
        path = local_path(loc)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    fs, path = filesystem(loc)
    if protocol(loc) in OBJECT_STORES:
        fs.pipe_file(path, data)  # one PUT (or a multipart upload completed at the end)
    else:
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/.{name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    fs.invalidate_cache()


def write_text(loc: Location, text: str) -> None:
    write_bytes(loc, text.encode("utf-8"))


def upload_tree(local_dir: Path, dest: Location) -> list[Location]:
    """Copy every file under ``local_dir`` to ``dest`` (each atomically); returns the destinations."""
    written = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        target = join(dest, *path.relative_to(local_dir).parts)
        write_bytes(target, path.read_bytes())
        written.append(target)
    return written
