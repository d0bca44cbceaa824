"""benchcal.commands: every argv of a run, one `benchcal evaluate` per checkpoint, one `benchcal reduce`."""

from __future__ import annotations

import argparse

import pytest

from benchcal.commands import evaluate_command, reduce_command
from benchcal.spec import parse_run
from benchcal.tasks.selection import select

CKPTS = [
    {"name": "s1", "model": {"builtin": "tiny-series/s1"}, "flops": 1e15},
    {"name": "s2", "model": {"hub": {"id": "org/m", "revision": "abc"}}, "flops": 2e15},
    {"name": "s3", "model": {"builtin": "tiny-series/s3"}, "flops": 4e15},
]


def run_with(suite=None, evaluator=None, classification=None):
    spec = {"checkpoints": CKPTS, "suite": suite or {"benchmarks": [{"name": "arc_easy"}], "shots": [0]}}
    if evaluator is not None:
        spec["evaluator"] = evaluator
    if classification is not None:
        spec["classification"] = classification
    return parse_run({"metadata": {"name": "t", "namespace": "ml"}, "spec": spec})


def evaluate_parser() -> argparse.ArgumentParser:
    from benchcal_eval.cli import add_arguments  # the argv is checked by the evaluator's own parser

    parser = argparse.ArgumentParser(prog="benchcal evaluate")
    add_arguments(parser)
    return parser


def test_one_command_per_checkpoint_whatever_the_shot_lists():
    run = run_with(
        suite={
            "benchmarks": [
                {"name": "arc_easy", "shots": [0, 3]},
                {"name": "piqa", "shots": [0]},
                {"name": "copa"},
            ],
            "shots": [0, 1, 5],
        }
    )
    cmd = evaluate_command(
        run, run.checkpoints[0], model="builtin:tiny-series/s1", out_dir="/r/checkpoints/s1"
    )
    assert cmd[:2] == ["benchcal", "evaluate"] and cmd.count("evaluate") == 1
    assert cmd[cmd.index("--tasks") + 1] == "arc_easy:0,3;piqa:0;copa:0,1,5"
    assert "--shots" not in cmd


def test_the_pairs_round_trip_through_the_evaluators_parser():
    run = run_with(
        suite={"benchmarks": [{"name": "jeopardy", "shots": [5, 0]}, {"name": "arc_easy"}], "shots": [3, 1]}
    )
    cmd = evaluate_command(run, run.checkpoints[0], model="m", out_dir="/o")
    args = evaluate_parser().parse_args(cmd[2:])
    pairs = [(t.name, k) for t, k in select(args.tasks, args.shots)]
    suite = [(b.name, k) for b in run.suite.benchmarks for k in b.shots]
    assert pairs == suite == [("jeopardy", 0), ("jeopardy", 5), ("arc_easy", 1), ("arc_easy", 3)]


def test_every_evaluator_setting_reaches_the_argv():
    run = run_with(
        suite={
            "benchmarks": [{"name": "arc_easy"}],
            "shots": [0],
            "limit": 7,
            "seed": 9,
            "fewshotSampling": "independent",
        },
        evaluator={"dtype": "bfloat16", "maxLength": 512, "tokenBudget": 4096, "trustRemoteCode": True},
    )
    cmd = evaluate_command(
        run, run.checkpoints[1], model="org/m", out_dir="/o", publish_target="ml/t-summary-s2"
    )
    args = evaluate_parser().parse_args(cmd[2:])
    assert (args.model, str(args.out), args.checkpoint, args.flops) == ("org/m", "/o", "s2", 2e15)
    assert (args.limit, args.seed, args.dtype, args.max_length, args.token_budget) == (
        7,
        9,
        "bfloat16",
        512,
        4096,
    )
    assert args.trust_remote_code is True and args.revision == "abc"
    assert args.fewshot_sampling == "independent"
    assert args.publish_configmap == "ml/t-summary-s2"


def test_defaults_add_nothing_the_crd_did_not_set():
    run = run_with()
    cmd = evaluate_command(
        run, run.checkpoints[0], model="m", out_dir="/o", executable=("python", "-m", "benchcal")
    )
    assert cmd[:4] == ["python", "-m", "benchcal", "evaluate"]
    for flag in (
        "--limit",
        "--max-length",
        "--token-budget",
        "--trust-remote-code",
        "--revision",
        "--publish-configmap",
    ):
        assert flag not in cmd, flag
    assert cmd[cmd.index("--dtype") + 1] == "auto" and cmd[cmd.index("--seed") + 1] == "1234"  # CRD defaults
    assert cmd[cmd.index("--fewshot-sampling") + 1] == "nested"


@pytest.mark.parametrize("strict", [False, True])
def test_reduce_command_for_the_reducer_job_and_for_benchcal_run(strict):
    run = run_with(classification={"alpha": 0.01, "strict": strict})
    job = reduce_command(run, out_dir="s3://b/t/report")
    assert job == [
        "benchcal", "reduce", "--from-configmaps", "ml/t", "--write-status", "ml/t",
        "--generation", str(run.generation), "--out", "s3://b/t/report", "--alpha", "0.01", *(["--strict"] if strict else []),
    ]  # fmt: skip
    local = reduce_command(run, out_dir="/r/report", inputs="/r/checkpoints", figures=False)
    assert local == [
        "benchcal", "reduce", "/r/checkpoints", "--out", "/r/report", "--alpha", "0.01",
        *(["--strict"] if strict else []), "--no-figures",
    ]  # fmt: skip
    only = reduce_command(run, out_dir="/r/report", checkpoints=["a", "c"])  # a run that grew or shrank
    assert only[8:10] == ["--checkpoints", "a,c"]
    exact = reduce_command(run, out_dir="/r/report", inputs=["/r/checkpoints/a", "/r/checkpoints/c"])
    assert exact[2:5] == ["/r/checkpoints/a", "/r/checkpoints/c", "--out"]  # exactly these checkpoints
    assert "--generation" not in local  # locally the history decides the generation
    kept = reduce_command(run, out_dir="/r/report", inputs="/r/checkpoints", history_file="/r/history.json")
    assert kept[3:5] == ["--history", "/r/history.json"]
    grown = parse_run(
        {
            "metadata": {"name": "t", "namespace": "ml", "generation": 7},
            "spec": {"checkpoints": CKPTS, "suite": {"benchmarks": [{"name": "arc_easy"}]}},
        }
    )
    job = reduce_command(grown, out_dir="/r")
    assert job[job.index("--generation") + 1] == "7"  # the reducer's history entry is this generation's
