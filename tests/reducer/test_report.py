"""Outputs, the bounded CR status summary, and the `benchcal reduce` CLI glue."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types

import pandas as pd
import pytest

from benchcal.app.cli import main
from benchcal.classification import BenchmarkVerdict, StatusClassification
from benchcal.results import CheckpointSummary, TaskResult
from benchcal_reduce.reduce import reduce_table
from benchcal_reduce.report import PER_SHOT_COLUMNS, status_summary, write_outputs

from .tables import make_table, pinned_options, valid

SERIES = {
    ("good", 0): [0.30, 0.36, 0.42, 0.48],
    ("good", 5): [0.32, 0.38, 0.44, 0.50],
    ("chance", 0): [0.25, 0.26, 0.24, 0.25],
    ("chance", 5): [0.25, 0.25, 0.26, 0.25],
}


@pytest.fixture(scope="module")
def reduction():
    return reduce_table(valid(make_table(SERIES)), pinned_options())


def test_write_outputs_without_figures(tmp_path, reduction):
    paths = write_outputs(reduction, tmp_path, figures=False)
    assert set(paths) == {
        "classification.csv", "per_shot.csv", "composite.csv", "summary.json", "report.md", "index.html"
    }  # fmt: skip
    cls = pd.read_csv(paths["classification.csv"])
    assert list(cls["group"]) == ["noise", "robust"]
    for col in (
        "benchmark",
        "category",
        "group",
        "recommended_shots",
        "reason",
        "best_spearman",
        "max_accuracy",
    ):
        assert col in cls.columns
    per_shot = pd.read_csv(paths["per_shot.csv"])
    assert list(per_shot.columns) == PER_SHOT_COLUMNS and len(per_shot) == 4
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["counts"]["robust"] == 1 and summary["counts"]["noise"] == 1
    assert summary["calibrated_suite"] == {
        "benchmarks": {"chance": 0, "good": 0},
        "flaggedNoise": ["chance"],
        "latentTrend": [],
        "removed": [],
        "undecided": [],
    }
    assert summary["benchmarks"]["chance"]["recommended_shots"] is None
    assert summary["options"]["bootstrap"] == 200 and summary["options"]["min_margin"] == 0.02
    assert 0 <= summary["benchmarks"]["good"]["confidence"] <= 1
    for col in ("confidence", "borderline", "redraw_alternative", "latent_trend", "mean_snr"):
        assert col in cls.columns
    report = paths["report.md"].read_text()
    assert "## robust" in report and "## noise" in report and "Gauntlet composite" in report
    assert "## Signal and noise" in report and "item_se_lower_bound" in report
    assert "## Not applied" in report and "latent-trend check not applied" in report
    assert "seeded redraws" in report
    assert not (tmp_path / "figures").exists()


def test_figures(tmp_path, reduction):
    paths = write_outputs(reduction, tmp_path, figures=True)
    pngs = sorted(p.relative_to(tmp_path).as_posix() for k, p in paths.items() if k.startswith("figure:"))
    assert pngs == [
        "figures/benchmarks/chance.png", "figures/benchmarks/good.png", "figures/composite.png",
        "figures/overview.png",
    ]  # fmt: skip
    assert all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    report = (tmp_path / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert links[0] == "figures/overview.png"  # linked first, above the tables
    assert report.index("figures/overview.png") < report.index("## robust")
    assert links[1:] == ["figures/overview.png", "figures/composite.png", "figures/benchmarks/chance.png",
                         "figures/benchmarks/good.png"]  # fmt: skip
    assert "[index.html](index.html)" in report


def test_figure_titles_carry_group_confidence_and_borderline():
    from benchcal_reduce.figures import figure_title

    row = {"group": "robust", "recommended_shots": 0, "confidence": 0.97, "borderline": False}
    assert figure_title("arc", row) == "arc: robust (use 0-shot), confidence 0.97"
    row = {
        "group": "noise",
        "recommended_shots": pd.NA,
        "confidence": 0.61,
        "borderline": True,
        "latent_trend": True,
    }
    assert figure_title("copa", row) == "copa: noise (latent trend), confidence 0.61 (borderline)"
    assert figure_title(
        "x", {"group": "inconclusive", "recommended_shots": pd.NA, "confidence": float("nan")}
    ) == ("x: inconclusive")


def test_status_summary_is_bounded_and_camel_case(reduction):
    # group names stay the CRD's (status.classification.counts.shot_dependent), field names are camelCase
    status = status_summary(reduction, max_benchmarks=1).to_status()
    assert status["counts"] == {
        "robust": 1,
        "shot_dependent": 0,
        "poorly_behaved": 0,
        "noise": 1,
        "inconclusive": 0,
    }
    assert status["truncated"] and status["totalBenchmarks"] == 2
    assert [b["name"] for b in status["benchmarks"]] == ["chance"]
    full = status_summary(reduction)
    good = next(b for b in full.benchmarks if b.name == "good")
    assert good == BenchmarkVerdict(
        "good",
        "robust",
        0,
        {"spearman": 1.0, "maxAccuracy": 0.5},
        confidence=1.0,
        borderline=False,
        latent_trend=False,
    )
    assert good.to_status() == {
        "name": "good",
        "group": "robust",
        "recommendedShots": 0,
        "confidence": 1.0,
        "borderline": False,
        "latentTrend": False,
        "numbers": {"spearman": 1.0, "maxAccuracy": 0.5},
    }
    json.dumps(full.to_status())  # JSON-serialisable as is


def _csv(tmp_path):
    path = tmp_path / "in.csv"
    make_table(SERIES).to_csv(path, index=False)
    return path


def test_cli_writes_outputs_and_maps_bad_input_to_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reduce", str(_csv(tmp_path)), "--out", str(out), "--no-figures", "--alpha", "0.01"]) == 0
    printed = capsys.readouterr().out
    assert "robust" in printed and "confidence" in printed
    assert json.loads((out / "summary.json").read_text())["options"]["alpha"] == 0.01
    args = ["--min-margin", "0.05", "--min-gain", "0.03", "--bootstrap", "0", "--seed", "4", "--no-figures"]
    assert main(["reduce", str(_csv(tmp_path)), "--out", str(out), *args]) == 0
    options = json.loads((out / "summary.json").read_text())["options"]
    assert options | {"alpha": 0} == {
        "alpha": 0,
        "strict": False,
        "correction": "bh",
        "min_margin": 0.05,
        "min_gain": 0.03,
        "bootstrap": 0,
        "seed": 4,
    }
    assert "not computed" in capsys.readouterr().out
    assert main(["reduce", str(_csv(tmp_path)), "--out", str(out), "--min-margin", "1.5"]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("checkpoint,flops\nc1,1\n")
    assert main(["reduce", str(bad), "--out", str(out)]) == 2
    assert "missing column" in capsys.readouterr().err
    assert main(["reduce", "--out", str(out)]) == 2


def _fake_publish(monkeypatch, summaries):
    calls = {}
    mod = types.ModuleType("benchcal.publish")
    mod.collect_summaries = lambda target: calls.setdefault("collect", target) and summaries
    mod.read_run_history = lambda target: ()
    mod.write_run_status = lambda target, classification, ref, entry: calls.update(
        status=(target, classification, ref)
    )
    monkeypatch.setitem(sys.modules, "benchcal.publish", mod)
    return calls


def test_cli_configmaps_and_status(tmp_path, monkeypatch):
    summaries = [
        CheckpointSummary(
            checkpoint=f"s{i}",
            model={},
            flops=10.0 ** (20 + i),
            results=[
                TaskResult(
                    benchmark="arc_easy",
                    category="world_knowledge",
                    task_type="multiple_choice",
                    num_fewshot=0,
                    metric="acc",
                    accuracy=acc,
                    n=2000,
                    stderr=0.01,
                    random_baseline=0.25,
                )
            ],
        )
        for i, acc in enumerate([0.3, 0.4, 0.5])
    ]
    calls = _fake_publish(monkeypatch, summaries)
    out = tmp_path / "out"
    rc = main(
        [
            "reduce",
            "--from-configmaps",
            "ns/run",
            "--write-status",
            "ns/run",
            "--out",
            str(out),
            "--no-figures",
        ]
    )
    assert rc == 0 and calls["collect"] == "ns/run"
    target, classification, ref = calls["status"]
    assert target == "ns/run" and isinstance(classification, StatusClassification)
    assert [(b.name, b.group) for b in classification.benchmarks] == [("arc_easy", "robust")]
    report = (out / "report.md").read_bytes()
    assert ref == {
        "uri": (out / "report.md").resolve().as_uri(),
        "sha256": hashlib.sha256(report).hexdigest(),
        "size": len(report),
    }


def test_status_fits_the_crd_status_schema(reduction, repo_root):
    import jsonschema
    import yaml

    from benchcal.publish import run_status_patch

    crd = yaml.safe_load((repo_root / "crds" / "calibrationruns.benchcal.dev.yaml").read_text())
    status_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    patch = run_status_patch(
        status_summary(reduction), {"uri": "file:///r/report.md", "sha256": "0" * 64, "size": 9}
    )
    jsonschema.validate(patch["status"], status_schema)
    cls = patch["status"]["classification"]
    assert cls["counts"]["robust"] == 1 and cls["counts"]["noise"] == 1
    good = next(b for b in cls["benchmarks"] if b["name"] == "good")
    assert good["group"] == "robust" and good["recommendedShots"] == 0
    assert good["confidence"] == 1.0 and good["borderline"] is False and good["latentTrend"] is False
    assert good["numbers"] == {"spearman": 1.0, "maxAccuracy": 0.5}
    assert set(cls["counts"]) == set(
        status_schema["properties"]["classification"]["properties"]["counts"]["properties"]
    )
    # a confidence outside [0, 1] would not fit the schema
    bad = {**patch["status"], "classification": {**cls, "benchmarks": [{**good, "confidence": 1.5}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, status_schema)


def _summary(i: int, acc: float) -> CheckpointSummary:
    result = TaskResult(
        benchmark="arc_easy",
        category="world_knowledge",
        task_type="multiple_choice",
        num_fewshot=0,
        metric="acc",
        accuracy=acc,
        n=2000,
        stderr=0.01,
        random_baseline=0.25,
    )
    return CheckpointSummary(checkpoint=f"s{i}", model={}, flops=10.0 ** (20 + i), results=[result])


def test_cli_checkpoints_reduces_exactly_the_runs_checkpoints(tmp_path, monkeypatch, capsys):
    """A checkpoint removed from a run keeps its summary ConfigMap; --checkpoints leaves it out."""
    summaries = [_summary(i, acc) for i, acc in enumerate([0.3, 0.4, 0.5, 0.2])]  # s3: removed, worse
    calls = _fake_publish(monkeypatch, summaries)
    base = ["reduce", "--from-configmaps", "ns/run", "--write-status", "ns/run", "--no-figures"]
    assert main([*base, "--out", str(tmp_path / "all")]) == 0
    assert calls["status"][1].benchmarks[0].group != "robust"  # s3 included: not monotone
    assert main([*base, "--out", str(tmp_path / "three"), "--checkpoints", "s0,s1,s2"]) == 0
    assert [(b.name, b.group) for b in calls["status"][1].benchmarks] == [("arc_easy", "robust")]
    assert main([*base, "--out", str(tmp_path / "x"), "--checkpoints", "s0,s9"]) == 2
    assert "no published summary for checkpoint(s) s9" in capsys.readouterr().err
