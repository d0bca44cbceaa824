#!/usr/bin/env python3
"""Build benchcal's images locally with podman, without any registry (``make images``).

    python3 tests/images/build.py                 # base + operator, reducer, evaluator (skips fresh ones)
    python3 tests/images/build.py --check         # print each image's state, build nothing (exit 1 if any is not fresh)
    python3 tests/images/build.py --force reducer # rebuild one target even if its label matches

What it does (docs/testing.md, "The real images"):

1. Installs Debian's ``podman``, ``runc`` and ``debootstrap`` if they are missing (apt-get).
2. ``PYTHON_BASE`` stand-in ``localhost/benchcal-python-base:bookworm``: ``debootstrap --variant=minbase
   bookworm`` plus Debian's python3, python3-venv, python3-pip, python-is-python3, imported with
   ``podman import`` (no registry can be pulled from). Rebuilt only when its recipe changes.
3. The Dockerfile's ``operator``, ``reducer`` and ``evaluator`` targets, unchanged, with build arguments
   only: the stand-in base, ``TORCH_FLAVOUR=cpu`` and an index from which this machine's pip finds the
   CPU wheel of torch. pip inside the build reads a generated ``pip.conf`` (mounted read-only at
   ``/etc/xdg/pip``) that repeats this machine's find-links and extra indexes, whose directories are
   mounted read-only at the same paths; the host's CA bundle is mounted at ``/run/host-ca.crt`` (a path
   of its own: mounting it over the image's bundle breaks Debian's ca-certificates postinst).
4. Cache: every image carries the label ``dev.benchcal.content-hash``, a hash of the Dockerfile,
   ``.dockerignore``, every file the Dockerfile COPYs from the context, the build arguments and the
   base image's ID. A target whose label matches is not rebuilt.
5. Disk (tests/images/storage.py): one build at a time (a file lock); the untagged images of earlier
   builds are removed before and after building (``--keep-superseded`` keeps them), and a build
   that the free space under podman's graphroot cannot hold stops before it starts, naming both.

Standard library only: it runs with the system python3 before any venv exists. Tests import
``content_hash``, ``image_state`` and the names below.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as `python3 tests/images/build.py`: make `tests` importable
    sys.path.insert(0, str(REPO))
from tests.images import storage  # noqa: E402  (standard library only, like this file)
from tests.images.pip_inside import pip_settings  # noqa: E402

DOCKERFILE = REPO / "Dockerfile"
PODMAN = ["podman", "--runtime", "runc"]  # crun fails here: "cgroups in hybrid mode not supported"
# the inherited limits fail every container with "setrlimit: Operation not permitted"
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
TARGETS = ("operator", "reducer", "evaluator")
BASE_IMAGE = "localhost/benchcal-python-base:bookworm"
HASH_LABEL = "dev.benchcal.content-hash"
RECIPE_LABEL = "dev.benchcal.base-recipe"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
# What python:3.11-slim-bookworm sets that programs rely on; the rest of its config is Debian's.
BASE_CHANGES = (
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["python3"]',
)
DEBIAN_SOURCES = f"""\
Types: deb
URIs: {DEBIAN_MIRROR}
Suites: {DEBIAN_SUITE} {DEBIAN_SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {DEBIAN_SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

# Build arguments: the only difference from a release build (which uses the Dockerfile's defaults).
BUILD_ARGS = {
    "PYTHON_BASE": BASE_IMAGE,
    "TORCH_FLAVOUR": "cpu",
    # with find-links /opt/wheels in the generated pip.conf, pip prefers 2.13.0+cpu (a higher
    # PEP 440 version than PyPI's 2.13.0) exactly as on this machine
    "TORCH_INDEX_URL": "https://pypi.org/simple",
}


def image_name(target: str) -> str:
    return f"localhost/benchcal-{target}:dev"


def log(msg: str) -> None:
    print(f"[images] {msg}", flush=True)


# ---- content hash (pure apart from reading files) ---------------------------------------------


def copied_sources(dockerfile_text: str) -> list[str]:
    """Context paths the Dockerfile COPYs (COPY --from=stage copies from other stages, not the context)."""
    sources: list[str] = []
    joined = dockerfile_text.replace("\\\n", " ")
    for line in joined.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(args[:-1])
    return sources


def dockerignore_patterns(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """The subset of .dockerignore syntax this repository uses: ``**/x``, ``x`` and globs, no ``!``."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatchcase(p, tail) for p in parts):
                return True
        elif any(fnmatch.fnmatchcase(p, pattern.rstrip("/")) for p in prefixes):
            return True
    return False


def context_files(repo: Path = REPO) -> list[Path]:
    """Every file the Dockerfile copies from the build context, after .dockerignore."""
    patterns = dockerignore_patterns((repo / ".dockerignore").read_text())
    files: set[Path] = set()
    for source in copied_sources((repo / "Dockerfile").read_text()):
        root = repo / source
        candidates = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in candidates:
            if not ignored(path.relative_to(repo).as_posix(), patterns):
                files.add(path)
    return sorted(files)


def content_hash(base_id: str, repo: Path = REPO, build_args: dict[str, str] = BUILD_ARGS) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"base": base_id, "args": build_args}, sort_keys=True).encode())
    for path in [repo / "Dockerfile", repo / ".dockerignore", *context_files(repo)]:
        h.update(path.relative_to(repo).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:24]


def base_recipe() -> str:
    recipe = {
        "suite": DEBIAN_SUITE,
        "mirror": DEBIAN_MIRROR,
        "packages": BASE_PACKAGES,
        "changes": BASE_CHANGES,
        "sources": DEBIAN_SOURCES,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


# ---- podman --------------------------------------------------------------------------------------


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], check=check, text=True, capture_output=capture)


def inspect(image: str) -> dict | None:
    """The image's config (Id, Labels, User, Entrypoint, Cmd), or None when it is not present."""
    if shutil.which("podman") is None:
        return None
    proc = podman("image", "inspect", image, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)[0]
    config = data.get("Config") or {}
    return {
        "Id": data["Id"],
        "Labels": config.get("Labels") or data.get("Labels") or {},
        "User": config.get("User", ""),
        "Entrypoint": config.get("Entrypoint"),
        "Cmd": config.get("Cmd"),
    }


def image_state(target: str) -> tuple[str, str]:
    """(state, detail): state is fresh | stale | missing | no-base | no-podman."""
    if shutil.which("podman") is None:
        return "no-podman", "podman is not installed (make images installs it)"
    base = inspect(BASE_IMAGE)
    if base is None:
        return "no-base", f"{BASE_IMAGE} is not present: run make images"
    wanted = content_hash(base["Id"])
    info = inspect(image_name(target))
    if info is None:
        return "missing", f"{image_name(target)} is not present: run make images"
    have = info["Labels"].get(HASH_LABEL, "")
    if have != wanted:
        return (
            "stale",
            f"{image_name(target)} was built from {have or 'unlabelled content'}, the source is {wanted}: run make images",
        )
    return "fresh", f"{image_name(target)} {info['Id'][:12]} ({HASH_LABEL}={wanted})"


def ensure_tools() -> None:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(
            f"[images] missing {', '.join(missing)} and not root: apt-get install podman runc debootstrap"
        )
    log(f"installing {' '.join(missing)} from Debian")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap"], check=True, env=env)


def build_base() -> None:
    recipe = base_recipe()
    info = inspect(BASE_IMAGE)
    if info is not None and info["Labels"].get(RECIPE_LABEL) == recipe:
        log(f"{BASE_IMAGE} is up to date ({RECIPE_LABEL}={recipe})")
        return
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="benchcal-base-", dir="/var/tmp"))
    try:
        log(f"debootstrap --variant=minbase {DEBIAN_SUITE} + {' '.join(BASE_PACKAGES)}")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(DEBIAN_SOURCES)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        changes = [f"--change={c}" for c in (*BASE_CHANGES, f"LABEL {RECIPE_LABEL}={recipe}")]
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*PODMAN, "import", *changes, "-", BASE_IMAGE],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise SystemExit("[images] tar of the debootstrap tree failed")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"{BASE_IMAGE} built in {time.monotonic() - started:.0f} s")


def build_target(target: str, chash: str, volumes: list[str]) -> float:
    cmd = [
        *PODMAN,
        "build",
        "--pull=never",
        "--network=host",
        *ULIMITS,
        *volumes,
        *(a for k, v in BUILD_ARGS.items() for a in ("--build-arg", f"{k}={v}")),
        "--label",
        f"{HASH_LABEL}={chash}",
        "--target",
        target,
        "--tag",
        image_name(target),
        "--file",
        str(DOCKERFILE),
        str(REPO),
    ]
    log(f"building {image_name(target)}")
    started = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help=f"any of {', '.join(TARGETS)} (default: all)"
    )
    parser.add_argument("--check", action="store_true", help="report each image's state; build nothing")
    parser.add_argument("--force", action="store_true", help="rebuild the named targets even if fresh")
    parser.add_argument(
        "--keep-superseded",
        action="store_true",
        help="leave the untagged images of earlier builds in podman's storage (storage.superseded)",
    )
    args = parser.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    if args.check:
        states = {t: image_state(t) for t in targets}
        for t, (state, detail) in states.items():
            print(f"{t}: {state}: {detail}")
        return 0 if all(s == "fresh" for s, _ in states.values()) else 1
    started = time.monotonic()
    ensure_tools()
    with storage.build_lock():
        if not args.keep_superseded:
            storage.remove_superseded(podman, log)
        root = storage.graph_root(podman)
        build_base()
        base_id = inspect(BASE_IMAGE)["Id"]
        chash = content_hash(base_id)
        todo = []
        for target in targets:
            info = inspect(image_name(target))
            if not args.force and info is not None and info["Labels"].get(HASH_LABEL) == chash:
                log(f"{image_name(target)} is fresh ({HASH_LABEL}={chash}): not rebuilt")
            else:
                todo.append(target)
        storage.check_free_space(todo, root, log)
        with tempfile.TemporaryDirectory(prefix="benchcal-images-") as tmp:
            _, volumes = pip_settings(Path(tmp))
            for target in todo:
                seconds = build_target(target, chash, volumes)
                log(f"{image_name(target)} built in {seconds:.0f} s")
        if todo and not args.keep_superseded:
            storage.remove_superseded(podman, log)
            storage.check_free_space([], root, log)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
