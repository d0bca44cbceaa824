"""Structure of the Dockerfile: stages and targets, pinned bases, non-root final stages, no
build tools where the images run beyond the run-time toolchains, and entry points that exist in
the package.

The Dockerfile is parsed into stages here; tests/images/ builds and runs the real images.
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
# Run-time toolchains of the evaluator: Triton compiles its CUDA driver shim with the system C
# compiler the first time a kernel launches (triton/runtime/build.py): gcc + libc6-dev; the
# sandbox compiles and runs the code benchmarks' samples (benchcal_eval/sandbox.py): one Debian
# package per language of the registry's code tasks.
LANGUAGE_PACKAGES = {
    "python": set(),
    "c++": {"g++"},
    "cpp": {"g++"},
    "javascript": {"nodejs"},
    "js": {"nodejs"},
}
RUNTIME_TOOLCHAINS = {"evaluator": {"gcc", "libc6-dev", "g++", "nodejs"}}
# Debian package of each executable the sandbox runs samples with (python: the venv's own).
TOOLCHAIN_PACKAGES = {"g++": "g++", "node": "nodejs"}


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
        if not command.strip().startswith(("apt-get ", "apt ")):
            continue  # e.g. a python -c "...; ..." whose quoted ; this split cut in two
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


def test_images_leave_gpu_visibility_to_the_device_plugin(parsed) -> None:
    """Issue 11 item 15: NVIDIA_VISIBLE_DEVICES in an image exposes GPUs a pod did not request."""
    _, stages = parsed
    for target in FINAL_TARGETS:
        for stage in chain(stages, target):
            for instruction, rest in stage.instructions:
                if instruction in ("ENV", "ARG"):
                    assert "NVIDIA_VISIBLE_DEVICES" not in rest, f"{target} (stage {stage.name}) sets it"


def test_no_build_tools_where_the_images_run(parsed) -> None:
    _, stages = parsed
    for target in FINAL_TARGETS:
        allowed = RUNTIME_TOOLCHAINS.get(target, set())
        for stage in chain(stages, target):
            for instruction, rest in stage.instructions:
                if instruction == "RUN":
                    tools = apt_packages(rest) & BUILD_TOOLS
                    assert tools <= allowed, f"{target} (stage {stage.name}) installs {tools - allowed}"
                    # the venv is installed in place: wheels only, so nothing is compiled there
                    for install in re.findall(r"pip install[^&;]*", rest):
                        assert "--only-binary=:all:" in install, f"{target}: {install} may build an sdist"
                if instruction == "COPY" and "--from=" in rest:
                    # the benchcal wheel only: a copied venv is stored twice by the build (issue: the
                    # CI machine's disk filled while the evaluator's venv was committed a second time)
                    source = re.search(r"--from=(\S+)", rest).group(1)
                    assert source == "wheel" and rest.split()[-2:] == ["/dist/", "/dist/"], (
                        f"{target}: COPY {rest}"
                    )


def _installed(stages: list[Stage], target: str) -> set[str]:
    return {
        p
        for stage in chain(stages, target)
        for ins, rest in stage.instructions
        if ins == "RUN"
        for p in apt_packages(rest)
    }


def test_evaluator_ships_the_toolchain_of_every_code_task_language(parsed) -> None:
    """A missing compiler makes every sample of that language fail: a silent score of 0."""
    from benchcal.tasks.loading import load_examples
    from benchcal.tasks.registry import list_tasks

    _, stages = parsed
    languages = {
        row["language"].lower()
        for task in list_tasks()
        if task.task_type == "code_evaluation"
        for row in load_examples(task)
    }
    assert {"python", "c++", "javascript"} <= languages
    unknown = languages - set(LANGUAGE_PACKAGES)
    assert not unknown, f"no toolchain package known for {unknown}: add it here and to the Dockerfile"
    needed = set().union(*(LANGUAGE_PACKAGES[lang] for lang in languages))
    missing = needed - _installed(stages, "evaluator")
    assert not missing, f"the evaluator image lacks {missing}"


def test_no_image_exposes_every_gpu_of_the_node(parsed) -> None:
    """The device plugin sets NVIDIA_VISIBLE_DEVICES per allocation; an image-wide "all" gives
    every GPU of a node to pods that requested none (on nodes whose default runtime is nvidia)."""
    _, stages = parsed
    for target in FINAL_TARGETS:
        for stage in chain(stages, target):
            for ins, rest in stage.instructions:
                if ins == "ENV":
                    assert "NVIDIA_VISIBLE_DEVICES" not in rest, f"{target} (stage {stage.name}): {rest}"


def test_runtime_stages_work_in_a_directory_writable_in_pods(parsed) -> None:
    """cwd / on a read-only root makes every relative path fail; /tmp is the Jobs' emptyDir."""
    _, stages = parsed
    for target in FINAL_TARGETS:
        assert last(chain(stages, target), "WORKDIR") == "/tmp", f"{target}: WORKDIR must be /tmp"


def test_evaluator_bakes_the_tiny_series_and_checks_the_torch_flavour(parsed) -> None:
    args, stages = parsed
    assert args["TORCH_FLAVOUR"] == "cuda"  # what users build; CI passes cpu
    runs = " ".join(rest for s in chain(stages, "evaluator") for ins, rest in s.instructions if ins == "RUN")
    assert "python -m benchcal_eval.tiny_series --bake" in runs
    assert "assert flavour == '${TORCH_FLAVOUR}'" in runs
    args_of_stage = [rest for ins, rest in chain(stages, "evaluator")[-1].instructions if ins == "ARG"]
    assert "TORCH_FLAVOUR" in args_of_stage


def test_images_install_the_right_extras(parsed, pyproject) -> None:
    _, stages = parsed
    extras_defined = set(pyproject["project"]["optional-dependencies"])
    wanted = {
        "operator": {"operator"},
        # s3/gcs: spec.results.uri and model.uri on object storage (benchcal.storage)
        "evaluator": {"evaluator", "triton", "reducer", "s3", "gcs"},
        "reducer": {"reducer", "s3", "gcs"},
    }
    for stage_name, must in wanted.items():
        runs = " ".join(
            rest for s in chain(stages, stage_name) for ins, rest in s.instructions if ins == "RUN"
        )
        extras = {e for group in re.findall(r"\.whl\)\[([\w,]+)\]", runs) for e in group.split(",")}
        assert must <= extras <= extras_defined, f"{stage_name}: extras {extras}"
        if stage_name != "evaluator":
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


def test_the_evaluator_image_has_every_toolchain_the_registry_s_code_tasks_need(parsed) -> None:
    """human_eval_cpp / human_eval_js must be checkable in the image, not scored 0 (issue 12)."""
    from benchcal.tasks.loading import load_examples
    from benchcal.tasks.registry import list_tasks
    from benchcal_eval.sandbox import TOOLCHAINS

    _, stages = parsed
    installed = set()
    for stage in chain(stages, "evaluator"):
        for instruction, rest in stage.instructions:
            if instruction == "RUN":
                installed |= apt_packages(rest)
    code_tasks = [t for t in list_tasks(include_unavailable=False) if t.task_type == "code_evaluation"]
    assert code_tasks
    for task in code_tasks:
        languages = {str(row["language"]).lower() for row in load_examples(task)[:5]}
        for language in languages:
            tool = TOOLCHAINS[language]
            if tool != "python":
                assert TOOLCHAIN_PACKAGES[tool] in installed, (
                    f"{task.name}: {tool} not in the evaluator image"
                )
