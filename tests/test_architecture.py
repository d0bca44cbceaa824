"""The layers of docs/architecture.md, enforced: import-linter's contracts ([tool.importlinter]).

``lint-imports`` must pass on the tree; the core's module list in the contracts must name every
module of the core; and every contract must break when the import it forbids appears (checked on
a copy of the packages with one forbidden import injected per contract).
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

import benchcal

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SOURCE_ROOTS = {
    "benchcal": ".",
    "benchcal_eval": "evaluator",
    "benchcal_operator": "operator",
    "benchcal_reduce": "reducer",
}
NOT_CORE = {"app", "__main__"}  # the composition layer and `python -m benchcal`

# contract id -> (file to append to, the forbidden import): one violation of each contract
VIOLATIONS = {
    "core": ("benchcal/spec.py", "import benchcal_reduce.stats"),
    "core-light": ("benchcal/layout.py", "import pandas"),
    "operator-light": ("benchcal_operator/coalesce.py", "import torch"),
    "evaluator-no-kopf": ("benchcal_eval/requests.py", "import kopf"),
    "reducer-light": ("benchcal_reduce/table.py", "import transformers"),
    "components-independent": ("benchcal_reduce/composite.py", "import benchcal_eval.metrics"),
    "components-below-app": ("benchcal_operator/settings.py", "import benchcal.app.cli"),
    "acyclic": ("benchcal/tasks/registry.py", "import benchcal.tasks.loading"),
}


def _config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def _contract(contract_id: str) -> dict:
    return next(c for c in _config()["contracts"] if c["id"] == contract_id)


def _lint_imports(cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extra (pip install 'benchcal[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath)), "COLUMNS": "400"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_tree_keeps_every_import_contract():
    proc = _lint_imports(REPO, [REPO / root for root in SOURCE_ROOTS.values()])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Contracts: {len(_config()['contracts'])} kept, 0 broken." in proc.stdout


def test_the_core_contracts_name_every_core_module():
    core = {f"benchcal.{m.name}" for m in pkgutil.iter_modules(benchcal.__path__) if m.name not in NOT_CORE}
    for contract_id in ("core", "core-light"):
        assert set(_contract(contract_id)["source_modules"]) == core, (
            f"[tool.importlinter] contract {contract_id!r}: list every core module (a new module of "
            "benchcal/ belongs to the core unless it is part of benchcal.app)"
        )


def test_every_contract_breaks_on_the_import_it_forbids(tmp_path):
    assert set(VIOLATIONS) == {c["id"] for c in _config()["contracts"]}, "add a violation for every contract"
    roots = []
    for package, root in SOURCE_ROOTS.items():
        dest = tmp_path / root if root != "." else tmp_path / "core"
        shutil.copytree(
            REPO / root / package, dest / package, ignore=shutil.ignore_patterns("data", "__pycache__")
        )
        roots.append(dest)
    for target, statement in VIOLATIONS.values():
        path = next(root / target for root in roots if (root / target).exists())
        path.write_text(path.read_text() + f"\n{statement}  # injected by tests/test_architecture.py\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = _lint_imports(tmp_path, roots)
    assert proc.returncode != 0
    for contract_id in VIOLATIONS:
        name = "".join(_contract(contract_id)["name"].split())  # rich may wrap long lines
        assert f"{name}BROKEN" in "".join(proc.stdout.split()), (
            f"{contract_id!r} did not break:\n{proc.stdout}"
        )
    assert f"Contracts: 0 kept, {len(VIOLATIONS)} broken." in proc.stdout
