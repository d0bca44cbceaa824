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
    # the evaluator's continuous metrics reach the reducer, which tests them (copa: all three)
    header = (report / "per_shot.csv").read_text().splitlines()[0].split(",")
    for m in ("gold_prob", "gold_margin", "bits_per_byte"):
        assert f"{m}_rise_p" in header, m
    notes = json.loads((report / "summary.json").read_text())["notes"]
    assert not [n for n in notes if "latent" in n or "stderr" in n], notes
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
    assert "spec.checkpoints: 2 item(s), fewer than the 3 required" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()


def test_equal_flops_fail_before_any_is_evaluated(tmp_path: Path, tiny_models: list[Path], capsys) -> None:
    out = tmp_path / "out"
    run_file = _write_run(tmp_path, tiny_models, out)
    doc = yaml.safe_load(run_file.read_text(encoding="utf-8"))
    doc["spec"]["checkpoints"][2]["flops"] = doc["spec"]["checkpoints"][1]["flops"]
    run_file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["run", str(run_file), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "spec.checkpoints: 3 checkpoint(s) with only 2 distinct flops value(s)" in err
    assert "spec.checkpoints[1] (m1) and spec.checkpoints[2] (m2) share flops 2e+15" in err
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
def test_embedded_default_finds_a_robust_and_a_noise_benchmark(
    tmp_path: Path, capsys, tiny_series_built: None
) -> None:
    """The README's main command on the real tiny series (the image's, or trained once per session)."""
    assert main(["run", "--out", str(tmp_path / "demo")]) == 0
    import csv

    with open(tmp_path / "demo" / "report" / "classification.csv", encoding="utf-8") as fh:
        rows = {r["benchmark"]: r for r in csv.DictReader(fh)}
    assert rows["bigbench_dyck_languages"]["group"] == "robust"
    assert rows["copa"]["group"] == "noise"
    assert rows["arc_easy"]["group"] == "noise"
    assert (tmp_path / "demo" / "report" / "figures" / "benchmarks" / "bigbench_dyck_languages.png").exists()


def _builtin_run(path: Path, out: Path, names: list[str]) -> Path:
    """A run over the built-in tiny series (trained once per session, then cached): few pairs, few items."""
    tokens = {"s1": 51200, "s2": 102400, "s3": 204800, "s4": 409600, "s5": 819200}
    ckpts = [
        {"name": n, "model": {"builtin": f"tiny-series/{n}"}, "params": 369216, "tokens": tokens[n]}
        for n in names
    ]
    benchmarks = [{"name": "bigbench_dyck_languages", "shots": [0, 1]}, {"name": "copa", "shots": [0]}]
    doc = _doc(ckpts, benchmarks, limit=12, seed=1234)
    doc["spec"]["results"] = {"path": str(out)}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _scored(out: Path, names: list[str]) -> dict[str, int]:
    """Requests each checkpoint's evaluator scored in the last run (its engine's count, via its snapshot)."""
    snaps = {n: read_snapshot(out / "logs" / f"{n}.progress.json") for n in names}
    assert all(s is not None and s.phase == PHASE_FINISHED for s in snaps.values()), snaps
    return {n: s.requests_scored for n, s in snaps.items()}


@pytest.mark.slow
def test_a_grown_run_evaluates_only_the_new_checkpoint_and_extends_the_history(
    tmp_path: Path, capsys, tiny_series_built: None
) -> None:
    from benchcal import history, layout

    out = tmp_path / "out"
    run_file = tmp_path / "run.yaml"
    assert main(["run", str(_builtin_run(run_file, out, ["s1", "s2", "s3"])), "--no-figures"]) == 0
    fresh = _scored(out, ["s1", "s2", "s3"])
    per_checkpoint = fresh["s1"]
    assert per_checkpoint > 0 and set(fresh.values()) == {per_checkpoint}  # 12 + 12 + 2 x 12 requests
    (first,) = history.parse_file(layout.history_file(out).read_text(), "history.json")
    assert (first.generation, first.checkpoints) == (1, ("s1", "s2", "s3"))
    results_before = {p: p.read_text() for p in (out / "checkpoints").rglob("results/*/*.json")}
    capsys.readouterr()

    # append a checkpoint: only it is evaluated; the others resume every pair, scoring nothing
    assert main(["run", str(_builtin_run(run_file, out, ["s1", "s2", "s3", "s4"])), "--no-figures"]) == 0
    assert _scored(out, ["s1", "s2", "s3", "s4"]) == {"s1": 0, "s2": 0, "s3": 0, "s4": per_checkpoint}
    err = capsys.readouterr().err
    assert "checkpoint s1 done in" in err and "3/3 pairs resumed, 0 requests scored" in err
    assert f"0/3 pairs resumed, {per_checkpoint} requests scored" in err
    assert all(p.read_text() == text for p, text in results_before.items())  # nothing recomputed
    h = history.parse_file(layout.history_file(out).read_text(), "history.json")
    assert [(e.generation, e.checkpoints) for e in h] == [
        (1, ("s1", "s2", "s3")),
        (2, ("s1", "s2", "s3", "s4")),
    ]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert [c["checkpoint"] for c in summary["checkpoints"]] == ["s1", "s2", "s3", "s4"]
    assert "| benchmark | gen 1 (3 ckpts) | gen 2 (4 ckpts) |" in (out / "report" / "report.md").read_text()

    # remove a checkpoint: dropped from the reduction (a new generation), its results kept
    assert main(["run", str(_builtin_run(run_file, out, ["s1", "s3", "s4"])), "--no-figures"]) == 0
    assert "not in run.yaml any more, not reduced (results kept): s2" in capsys.readouterr().out
    assert _scored(out, ["s1", "s3", "s4"]) == {"s1": 0, "s3": 0, "s4": 0}
    assert list((out / "checkpoints" / "s2" / "results").rglob("*.json"))
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert [c["checkpoint"] for c in summary["checkpoints"]] == ["s1", "s3", "s4"]
    h = history.parse_file(layout.history_file(out).read_text(), "history.json")
    assert [(e.generation, e.count) for e in h] == [(1, 3), (2, 4), (3, 3)]
    assert summary["history"]["entries"] == history.to_status(h)
