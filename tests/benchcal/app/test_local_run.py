"""`benchcal run` (benchcal.app.local_run): planning (pure) and the whole local pipeline on tiny checkpoints."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from benchcal.app.cli import main
from benchcal.app.local_run import default_run_path, local_model_argument, plan_local, results_dir
from benchcal.errors import BadInput
from benchcal.spec import load_run, parse_run


def _doc(checkpoints: list[dict], benchmarks: list[dict], **suite) -> dict:
    return {
        "apiVersion": "benchcal.dev/v1alpha1",
        "kind": "CalibrationRun",
        "metadata": {"name": "t"},
        "spec": {"checkpoints": checkpoints, "suite": {"benchmarks": benchmarks, **suite}},
    }


def test_embedded_default_plans_five_builtin_checkpoints_in_flops_order(tmp_path: Path) -> None:
    run = load_run(default_run_path())
    steps = plan_local(run, tmp_path)
    assert [s.checkpoint for s in steps] == ["s1", "s2", "s3", "s4", "s5"]
    argv = steps[0].command  # one evaluator call per checkpoint
    assert argv[:4] == [sys.executable, "-m", "benchcal", "evaluate"]
    assert argv[argv.index("--model") + 1] == "builtin:tiny-series/s1"
    pairs = argv[argv.index("--tasks") + 1].split(";")
    assert len(pairs) == len(run.suite.benchmarks) and all(p.endswith(":0,1,3") for p in pairs)
    assert "--shots" not in argv
    assert argv[argv.index("--out") + 1] == str(tmp_path / "checkpoints" / "s1")
    assert float(argv[argv.index("--flops") + 1]) == run.checkpoints[0].flops


def test_benchmarks_with_different_shots_share_one_evaluator_call(tmp_path: Path) -> None:
    ckpts = [{"name": f"c{i}", "model": {"path": f"/m/{i}"}, "flops": 10.0 ** (i + 1)} for i in range(3)]
    run = parse_run(_doc(ckpts, [{"name": "copa", "shots": [0]}, {"name": "piqa", "shots": [0, 5]}], limit=7))
    (step, *_) = plan_local(run, tmp_path)
    assert step.command[step.command.index("--tasks") + 1] == "copa:0;piqa:0,5"
    assert step.command[step.command.index("--limit") + 1] == "7"
    assert step.command.count("evaluate") == 1


def test_cluster_only_model_sources_are_rejected_with_the_field(tmp_path: Path) -> None:
    ckpts = [
        {"name": "a", "model": {"pvc": {"claimName": "models", "path": "a"}}, "flops": 1e18},
        {"name": "b", "model": {"uri": "s3://bucket/b"}, "flops": 2e18},
    ]
    run = parse_run(_doc(ckpts, [{"name": "copa", "shots": [0]}]))
    with pytest.raises(BadInput, match=r"spec\.checkpoints\[0\]\.model\.pvc"):
        local_model_argument(run.checkpoints[0], 0)
    with pytest.raises(BadInput, match=r"spec\.checkpoints\[1\]\.model\.uri"):
        local_model_argument(run.checkpoints[1], 1)


def test_results_dir_precedence(tmp_path: Path) -> None:
    run = load_run(default_run_path())
    assert results_dir(run) == Path("benchcal-results") / "tiny-demo"
    assert results_dir(run, tmp_path) == tmp_path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir

    root = tmp_path_factory.mktemp("models")
    src = tiny_checkpoint_dir()
    dirs = []
    for i in range(3):
        dirs.append(root / f"m{i}")
        shutil.copytree(src, dirs[-1])
    return dirs


def _write_run(tmp_path: Path, models: list[Path], out: Path) -> Path:
    from tests.evaluator.tiny_checkpoint import write_tiny_tasks

    write_tiny_tasks(tmp_path / "tasks")  # writes data we do not need; the run uses copa below
    ckpts = [
        {"name": m.name, "model": {"path": str(m)}, "flops": 1e15 * (i + 1)} for i, m in enumerate(models)
    ]
    doc = _doc(ckpts, [{"name": "copa", "shots": [0, 1]}], limit=6)
    doc["spec"]["results"] = {"path": str(out)}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_run_evaluates_reduces_and_resumes(tmp_path: Path, tiny_models: list[Path], capsys) -> None:
    out = tmp_path / "out"
    run_file = _write_run(tmp_path, tiny_models, out)
    assert main(["run", str(run_file), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "copa" in printed and "report:" in printed
    for m in tiny_models:
        assert (out / "checkpoints" / m.name / "summary.json").exists()
        assert (out / "checkpoints" / m.name / "results" / "copa" / "1shot.json").exists()
    report = out / "report"
    for name in ("classification.csv", "per_shot.csv", "summary.json", "report.md"):
        assert (report / name).exists(), name
    # a second run resumes: every (benchmark, shots) pair is skipped, results unchanged
    before = (out / "checkpoints" / "m0" / "results" / "copa" / "0shot.json").read_text()
    assert main(["run", str(run_file), "--no-figures"]) == 0
    assert (out / "checkpoints" / "m0" / "results" / "copa" / "0shot.json").read_text() == before
    assert "skip" in (out / "logs" / "m0.log").read_text().lower()


def test_a_failed_checkpoint_keeps_the_others(tmp_path: Path, tiny_models: list[Path], capsys) -> None:
    out = tmp_path / "out"
    models = [*tiny_models, tmp_path / "missing-model"]
    run_file = _write_run(tmp_path, models, out)
    assert main(["run", str(run_file), "--no-figures"]) != 0
    printed = capsys.readouterr().out
    assert "missing-model failed (exit 2)" in printed
    assert (out / "report" / "classification.csv").exists()  # three checkpoints finished: reduced
    assert all((out / "checkpoints" / m.name / "summary.json").exists() for m in tiny_models)


@pytest.mark.slow
def test_embedded_default_finds_a_robust_and_a_noise_benchmark(tmp_path: Path, capsys) -> None:
    """The README's main command on the real tiny series (trained once per session, then cached)."""
    assert main(["run", "--out", str(tmp_path / "demo")]) == 0
    import csv

    with open(tmp_path / "demo" / "report" / "classification.csv", encoding="utf-8") as fh:
        rows = {r["benchmark"]: r for r in csv.DictReader(fh)}
    assert rows["bigbench_dyck_languages"]["group"] == "robust"
    assert rows["copa"]["group"] == "noise"
    assert rows["arc_easy"]["group"] == "noise"
    assert (tmp_path / "demo" / "report" / "figures" / "benchmarks" / "bigbench_dyck_languages.png").exists()
