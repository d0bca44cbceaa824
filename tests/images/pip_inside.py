"""pip inside the image build (tests/images/build.py): this machine's indexes and find-links, read-only.

pip in the build reads a generated ``pip.conf`` (mounted read-only at ``/etc/xdg/pip``) that repeats
this machine's find-links and extra indexes, whose directories are mounted read-only at the same
paths; the host's CA bundle is mounted at ``/run/host-ca.crt``, a path of its own (mounting it over
the image's bundle breaks Debian's ca-certificates postinst). Standard library only, like build.py.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_BUILD = "/run/host-ca.crt"


def host_pip_config() -> dict[str, str]:
    """This machine's effective pip settings (``pip config list``), e.g. global.find-links."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        key = key.split(".", 1)[-1]  # global.find-links, :env:.find-links
        out[key] = value.strip().strip("'\"")
    for env_key, key in (
        ("PIP_FIND_LINKS", "find-links"),
        ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
        ("PIP_INDEX_URL", "index-url"),
    ):
        if os.environ.get(env_key):
            out[key] = os.environ[env_key]
    return out


def local_dirs(values: list[str]) -> list[str]:
    """Local directories named by find-links / file:// index URLs (mounted read-only into the build)."""
    dirs: list[str] = []
    for value in values:
        path = value.removeprefix("file://")
        if path.startswith("/"):
            top = Path(path)
            while top.parent != Path("/") and top.name in ("simple",):
                top = top.parent
            if top.exists() and str(top) not in dirs:
                dirs.append(str(top))
    return dirs


def pip_settings(workdir: Path) -> tuple[Path, list[str]]:
    """A pip.conf for the build (mounted at /etc/xdg/pip) and the read-only volumes it needs."""
    host = host_pip_config()
    conf = configparser.ConfigParser()
    conf["global"] = {"disable-pip-version-check": "1", "default-timeout": "180"}
    volumes: list[str] = []
    links = host.get("find-links", "").split()
    extra = host.get("extra-index-url", "").split()
    if links:
        conf["global"]["find-links"] = " ".join(links)
    if extra:
        conf["global"]["extra-index-url"] = " ".join(extra)
    if host.get("index-url"):
        conf["global"]["index-url"] = host["index-url"]
    for d in local_dirs(links + extra):
        volumes += ["--volume", f"{d}:{d}:ro"]
    ca = Path(os.environ.get("PIP_CERT") or host.get("cert") or HOST_CA)
    if ca.exists():
        conf["global"]["cert"] = CA_IN_BUILD
        volumes += ["--volume", f"{ca}:{CA_IN_BUILD}:ro"]
    pipdir = workdir / "pip"
    pipdir.mkdir()
    with (pipdir / "pip.conf").open("w") as f:
        conf.write(f)
    volumes += ["--volume", f"{pipdir}:/etc/xdg/pip:ro"]
    return pipdir / "pip.conf", volumes
