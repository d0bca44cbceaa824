"""How `make test` splits the suite over pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO_ROOT, start_rank, work_unit


def test_a_module_is_one_unit_and_an_e2e_test_is_its_own() -> None:
    a = "tests/kube/test_containers.py::test_read_only_root[x]"
    b = "tests/kube/test_containers.py::test_memory_limit"
    assert work_unit(a) == work_unit(b) == "tests/kube/test_containers.py"
    e1 = "tests/e2e/test_credentials.py::test_refused_publish"
    e2 = "tests/e2e/test_credentials.py::test_granted_publish"
    assert work_unit(e1) == e1
    assert work_unit(e2) == e2
    # each local run of the real tiny series too: as one module they were the longest chain
    r1 = "tests/benchcal/app/test_local_run.py::test_embedded_default_finds_a_robust_and_a_noise_benchmark"
    r2 = "tests/benchcal/app/test_local_run.py::test_run_evaluates_reduces_and_resumes"
    assert work_unit(r1) == r1 and work_unit(r2) == r2


def test_make_test_runs_the_suite_on_workers_with_this_scheduler() -> None:
    """The Makefile's flags select the scheduler of tests/conftest.py (loadscope, no reordering)."""
    out = subprocess.run(
        ["make", "-n", "test", "PY=true"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout
    (line,) = [ln for ln in out.splitlines() if "-m pytest" in ln]
    assert "-n 3" in line and "--dist loadscope" in line and "--no-loadscope-reorder" in line


class _Item:
    def __init__(self, nodeid: str, *marks: str):
        self.nodeid = nodeid
        self.keywords = dict.fromkeys(marks, True)


def test_workers_order_the_e2e_tests_first_the_slowest_first() -> None:
    """Each worker sorts its collection alike; the scheduler hands units out in that order."""
    items = [
        _Item("tests/benchcal/test_spec.py::test_a"),
        _Item("tests/evaluator/test_models.py::test_b", "slow"),
        _Item("tests/e2e/test_bad_input.py::test_c", "e2e"),
        _Item("tests/e2e/test_happy_path.py::test_d", "e2e", "slow"),
        _Item("tests/kube/test_containers.py::test_e", "podman"),
        _Item("tests/e2e/test_growth.py::test_f", "e2e", "slow"),
        _Item("tests/benchcal/test_work.py::test_g"),
        _Item("tests/benchcal/app/test_local_run.py::test_h", "slow"),
        _Item("tests/benchcal/app/test_local_run.py::test_embedded_default_finds_i", "slow"),
    ]
    order = [item.nodeid.rsplit("_", 1)[1] for item in sorted(items, key=start_rank)]
    assert order == ["f", "d", "i", "c", "h", "b", "e", "a", "g"]
