"""Structure of the Dockerfile: stages and targets, pinned bases, non-root final stages, no
build tools where the images run, and entry points that exist in the package.

No image is built here (no Docker daemon, no network); the Dockerfile is parsed into stages.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
FINAL_TARGETS = ("operator", "evaluator", "reducer")
# Packages that compile or fetch things. None may be installed where the images run.
BUILD_TOOLS = {
    "build-essential", "g++", "gcc", "clang", "make", "cmake", "ninja-build", "autoconf", "automake",
    "libtool", "pkg-config", "git", "curl", "wget", "python3-dev", "libc6-dev", "cargo", "rustc", "golang",
}  # fmt: skip
# Triton compiles its CUDA driver shim with the system C compiler on the GPU node the first time
# a kernel launches (triton/runtime/build.py), so the evaluator needs exactly these at run time.
TRITON_RUNTIME = {"evaluator": {"gcc", "libc6-dev"}}


@dataclass
class Stage:
    name: str
    base: str  # the FROM argument with build args resolved
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, rest)


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments and blank lines."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, in order."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"every stage must be named: FROM {rest}"
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(words[2], base))
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, rest))
    return args, stages


def chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the local stages it is built FROM, base first."""
    by_name = {s.name: s for s in stages}
    out = [by_name[name]]
    while out[0].base in by_name:
        out.insert(0, by_name[out[0].base])
    return out


def apt_packages(run: str) -> set[str]:
    packages: set[str] = set()
    for command in re.split(r"&&|;", run):
        words = shlex.split(command)
        if words[:2] in (["apt-get", "install"], ["apt", "install"]):
            packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"use the exec (JSON) form: {rest}"
    return value


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def last(stages: list[Stage], instruction: str) -> str | None:
    found = [rest for s in stages for ins, rest in s.instructions if ins == instruction]
    return found[-1] if found else None


def test_stages_and_targets(parsed) -> None:
    _, stages = parsed
    names = [s.name for s in stages]
    assert len(names) == len(set(names))
    assert set(FINAL_TARGETS) <= set(names)
    assert names[-1] == "operator"  # `docker build .` without --target gives the operator


def test_external_bases_are_pinned(parsed) -> None:
    _, stages = parsed
    local = {s.name for s in stages}
    for stage in stages:
        if stage.base in local:
            continue
        assert "$" not in stage.base, f"{stage.name}: unresolved build arg in {stage.base}"
        image, _, digest = stage.base.partition("@")
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        pinned_tag = re.match(r"^\d+\.\d+\.\d+", tag) is not None
        assert pinned_tag or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{stage.name}: pin {stage.base}"
        assert tag != "latest"


def test_final_stages_run_as_a_numeric_non_root_user(parsed) -> None:
    _, stages = parsed
    for target in FINAL_TARGETS:
        user = last(chain(stages, target), "USER")
        assert user is not None, f"{target}: no USER"
        uid, _, gid = user.partition(":")
        assert uid.isdigit() and int(uid) > 0, f"{target}: USER {user} must be a non-zero number"
        assert not gid or (gid.isdigit() and int(gid) > 0)


def test_no_build_tools_where_the_images_run(parsed) -> None:
    _, stages = parsed
    for target in FINAL_TARGETS:
        allowed = TRITON_RUNTIME.get(target, set())
        for stage in chain(stages, target):
            for instruction, rest in stage.instructions:
                if instruction == "RUN":
                    tools = apt_packages(rest) & BUILD_TOOLS
                    assert tools <= allowed, f"{target} (stage {stage.name}) installs {tools - allowed}"
                    assert "pip install" not in rest, f"{target}: install into a builder venv, then COPY it"
                if instruction == "COPY" and "--from=" in rest:
                    source = re.search(r"--from=(\S+)", rest).group(1)
                    assert source.endswith("-venv") and "/opt/venv" in rest, f"{target}: COPY {rest}"


def test_images_install_the_right_extras(parsed, pyproject) -> None:
    _, stages = parsed
    extras_defined = set(pyproject["project"]["optional-dependencies"])
    by_name = {s.name: s for s in stages}
    wanted = {
        "operator-venv": {"operator"},
        "evaluator-venv": {"evaluator", "triton", "reducer"},
        "reducer-venv": {"reducer"},
    }
    for stage_name, must in wanted.items():
        runs = " ".join(rest for ins, rest in by_name[stage_name].instructions if ins == "RUN")
        extras = {e for group in re.findall(r"\.whl\)\[([\w,]+)\]", runs) for e in group.split(",")}
        assert must <= extras <= extras_defined, f"{stage_name}: extras {extras}"
        if stage_name != "evaluator-venv":
            assert not extras & {"evaluator", "triton"}, f"{stage_name} must not pull torch"


def test_entrypoint_and_commands_exist_in_the_package(parsed, pyproject) -> None:
    _, stages = parsed
    scripts = pyproject["project"]["scripts"]
    cli = pytest.importorskip("benchcal.app.cli")
    for target in FINAL_TARGETS:
        entry = exec_form(last(chain(stages, target), "ENTRYPOINT"))
        assert entry == ["/usr/bin/tini", "--"], f"{target}: PID 1 must forward signals to Python"
        cmd = exec_form(last(chain(stages, target), "CMD"))
        assert cmd[0] in scripts, f"{target}: {cmd[0]} is not in [project.scripts]"
        assert scripts[cmd[0]] == "benchcal.app.cli:main"
        assert cmd[1] in cli.SUBCOMMANDS, f"{target}: `benchcal {cmd[1]}` does not exist"
        module = cli.SUBCOMMANDS[cmd[1]][0]
        assert importlib.util.find_spec(module) is not None, f"{target}: {module} is not in the package"
    operator_cmd = exec_form(last(chain(stages, "operator"), "CMD"))
    # the chart's Deployment passes the same arguments (tests/charts/test_chart.py)
    assert operator_cmd == [
        "benchcal",
        "operator",
        "--standalone",
        "--liveness",
        "http://0.0.0.0:8081/healthz",
    ]


def test_copied_sources_exist_and_are_not_dockerignored(parsed) -> None:
    _, stages = parsed
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    for stage in stages:
        for instruction, rest in stage.instructions:
            if instruction != "COPY" or "--from=" in rest:
                continue
            for source in rest.split()[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY {source}: missing from the repository"
                assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"
