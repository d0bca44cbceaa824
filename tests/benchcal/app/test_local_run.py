"""`benchcal run` (benchcal.app.local_run): planning (pure) and the whole local pipeline on tiny checkpoints."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from benchcal.app.cli import main
from benchcal.app.local_run import default_run_path, local_model_argument, plan_local, results_dir
from benchcal.errors import BadInput
from benchcal.progress import PHASE_FINISHED, read_snapshot
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
        {"name": "b", "model": {"uri": "az://container/b"}, "flops": 2e18},  # adlfs: not installed
        {"name": "c", "model": {"uri": "s3://bucket/c"}, "flops": 3e18},
    ]
    run = parse_run(_doc(ckpts, [{"name": "copa", "shots": [0]}]))
    with pytest.raises(BadInput, match=r"spec\.checkpoints\[0\]\.model\.pvc"):
        local_model_argument(run.checkpoints[0], 0)
    with pytest.raises(BadInput, match=r"spec\.checkpoints\[1\]\.model\.uri.*az:// driver"):
        local_model_argument(run.checkpoints[1], 1)
    assert local_model_argument(run.checkpoints[2], 2) == "s3://bucket/c"  # the evaluator copies it


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
    captured = capsys.readouterr()
    printed = captured.out
    assert "copa" in printed and "report:" in printed
    # the live display (plain lines: stderr is no terminal here), fed by each evaluator's snapshot
    # (an evaluator takes seconds to start, the display polls twice a second: it sees each one)
    assert "evaluating m0 (log:" in captured.err
    assert all(re.search(rf"^{m.name}: ", captured.err, re.M) for m in tiny_models), captured.err
    for m in tiny_models:
        snap = read_snapshot(out / "logs" / f"{m.name}.progress.json")
        assert (snap.phase, snap.pairs_finished, snap.pairs_total) == (PHASE_FINISHED, 2, 2)
    for m in tiny_models:
        assert (out / "checkpoints" / m.name / "summary.json").exists()
        assert len(list((out / "checkpoints" / m.name / "results" / "copa").glob("1shot.*.json"))) == 1
    report = out / "report"
    for name in ("classification.csv", "per_shot.csv", "summary.json", "report.md"):
        assert (report / name).exists(), name
    # a second run resumes: every (benchmark, shots) pair is skipped, results unchanged
    (zero_shot,) = (out / "checkpoints" / "m0" / "results" / "copa").glob("0shot.*.json")
    before = zero_shot.read_text()
    # a checkpoint of an earlier run in the same root (the review's c2): not this run's, not reduced
    stale = out / "checkpoints" / "stale"
    shutil.copytree(out / "checkpoints" / "m0", stale)
    doc = json.loads((stale / "summary.json").read_text())
    (stale / "summary.json").write_text(json.dumps({**doc, "checkpoint": "stale", "flops": 1e20}))
    assert main(["run", str(run_file), "--no-figures"]) == 0
    assert zero_shot.read_text() == before
    assert "skip" in (out / "logs" / "m0.log").read_text().lower()
    reduced = json.loads((report / "summary.json").read_text())["checkpoints"]
    assert [c["checkpoint"] for c in reduced] == ["m0", "m1", "m2"]
    assert "stale" not in (report / "report.md").read_text()
    assert stale.exists()  # not this run's: left alone


def test_a_missing_model_path_fails_before_any_checkpoint_is_evaluated(
    tmp_path: Path, tiny_models: list[Path], capsys
) -> None:
    out = tmp_path / "out"
    run_file = _write_run(tmp_path, [*tiny_models, tmp_path / "missing-model"], out)
    assert main(["run", str(run_file), "--no-figures"]) == 2
    assert "spec.checkpoints[3].model.path" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()  # nothing was evaluated


def test_too_few_checkpoints_fail_before_any_is_evaluated(
    tmp_path: Path, tiny_models: list[Path], capsys
) -> None:
    out = tmp_path / "out"
    run_file = _write_run(tmp_path, tiny_models[:2], out)
    assert main(["run", str(run_file), "--no-figures"]) == 2
    assert "needs at least 3" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()


def test_a_failed_checkpoint_keeps_the_others(tmp_path: Path, tiny_models: list[Path], capsys) -> None:
    out = tmp_path / "out"
    broken = tmp_path / "not-a-model"
    broken.mkdir()  # exists (passes the early check), but holds no checkpoint: its evaluator fails
    run_file = _write_run(tmp_path, [*tiny_models, broken], out)
    assert main(["run", str(run_file), "--no-figures"]) != 0
    printed = capsys.readouterr().out
    assert "not-a-model failed (exit 2)" in printed
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
