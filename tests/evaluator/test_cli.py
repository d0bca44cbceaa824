"""`benchcal evaluate` end to end: outputs, resume, exit codes and error messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from benchcal.app.cli import main
from benchcal.results import read_summary, result_path
from tests.evaluator.tiny_checkpoint import tiny_checkpoint_dir, write_tiny_tasks


@pytest.fixture(scope="module")
def task_file(tmp_path_factory) -> Path:
    return write_tiny_tasks(tmp_path_factory.mktemp("tasks"))


def evaluate(
    *extra: str, model: str | None = None, task_file: Path, out: Path, tasks: str = "tiny_mc,tiny_schema"
):
    argv = ["evaluate", "--model", model or str(tiny_checkpoint_dir()), "--tasks", tasks,
            "--task-file", str(task_file), "--out", str(out), "--device", "cpu", *extra]  # fmt: skip
    return main(argv)


def test_writes_results_and_checkpoint_metadata(task_file, tmp_path):
    rc = evaluate("--shots", "0,1", "--checkpoint", "s1", "--flops", "2.5e15", "--per-example",
                  task_file=task_file, out=tmp_path)  # fmt: skip
    assert rc == 0
    summary = read_summary(tmp_path)
    assert summary.checkpoint == "s1" and summary.flops == 2.5e15
    assert sorted((r.benchmark, r.num_fewshot) for r in summary.results) == [
        ("tiny_mc", 0), ("tiny_mc", 1), ("tiny_schema", 0), ("tiny_schema", 1)
    ]  # fmt: skip
    key = next(r.config_key for r in summary.results if (r.benchmark, r.num_fewshot) == ("tiny_mc", 1))
    assert (tmp_path / "examples" / "tiny_mc" / f"1shot.{key}.jsonl").exists()


def test_resume_after_an_interrupted_run(task_file, tmp_path, caplog):
    # First run stands in for one that was killed after the 0-shot pairs.
    assert evaluate("--shots", "0", task_file=task_file, out=tmp_path) == 0
    first = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*.json")}
    assert len(first) == 2
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert evaluate("--shots", "0,1", task_file=task_file, out=tmp_path) == 0
    skipped = [r.getMessage() for r in caplog.records if "already done" in r.getMessage()]
    assert len(skipped) == 2 and all("0-shot" in m for m in skipped)
    assert all(p.read_bytes() == data for p, data in first.items())  # untouched
    assert len(read_summary(tmp_path).results) == 4
    # Default checkpoint name: the model directory's basename.
    assert read_summary(tmp_path).checkpoint == tiny_checkpoint_dir().name


def test_fewshot_sampling_reaches_the_prompts_and_the_resume_key(task_file, tmp_path, caplog):
    assert (
        evaluate("--shots", "0,1", "--fewshot-sampling", "independent", task_file=task_file, out=tmp_path)
        == 0
    )

    def files(shot):
        return {p.name: p.read_bytes() for p in (tmp_path / "results" / "tiny_mc").glob(f"{shot}.*.json")}

    before = {shot: files(shot) for shot in ("0shot", "1shot")}
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert evaluate("--shots", "0,1", task_file=task_file, out=tmp_path) == 0  # default: nested
    skipped = [r.getMessage() for r in caplog.records if "already done" in r.getMessage()]
    assert len(skipped) == 2 and all("0-shot" in m for m in skipped)  # 0-shot prompts do not change
    assert files("0shot") == before["0shot"] and len(before["0shot"]) == 1
    after = files("1shot")  # the nested 1-shot result sits beside the independent one, other key
    assert len(before["1shot"]) == 1 and len(after) == 2 and set(before["1shot"]) < set(after)
    keys = {json.loads(data)["config_key"] for data in after.values()}
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "tiny_mcc"], "did you mean tiny_mc"),
        (["--tasks", "arc_easyy"], "did you mean arc_easy"),
        (["--shots", "0,x"], "--shots"),
        (["--shots", "3,3"], "repeats"),
        (["--model", "/nonexistent/checkpoint"], "does not exist"),
        (["--publish-configmap", "no-slash"], "NAMESPACE/NAME"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(task_file, tmp_path, capsys, args, message):
    extra = dict(zip(args[::2], args[1::2], strict=True))
    model = extra.pop("--model", None)
    tasks = extra.pop("--tasks", "tiny_mc")
    flat = [x for kv in extra.items() for x in kv]
    rc = evaluate(*flat, model=model, task_file=task_file, out=tmp_path / "out", tasks=tasks)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "results").exists()  # no work done


def test_malformed_jsonl_names_file_and_line_before_loading_the_model(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"context": "a", "continuation": "b"}\n\n{"context": oops}\n')
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n- {name: bad_lm, category: toy, task_type: language_modeling, data_file: bad.jsonl}\n"
    )
    # The model path does not exist either: the data error must come first (checked before loading).
    rc = evaluate(
        model="/nonexistent/model", task_file=tmp_path / "tasks.yaml", out=tmp_path / "out", tasks="bad_lm"
    )
    assert rc == 2
    assert "bad.jsonl:3" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--limit", "0"], ["--flops", "-1"], ["--max-length", "x"]])
def test_invalid_option_values_exit_2(task_file, tmp_path, args, capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate(*args, task_file=task_file, out=tmp_path)
    assert exc.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_max_length_beyond_the_model_is_rejected(task_file, tmp_path, capsys):
    assert evaluate("--max-length", "100000", task_file=task_file, out=tmp_path) == 2
    assert "exceeds the model's context" in capsys.readouterr().err


def test_failed_pair_exits_1_but_keeps_the_rest(tmp_path):
    (tmp_path / "ok.jsonl").write_text(json.dumps({"context": "the cat sat", "continuation": "on"}) + "\n")
    (tmp_path / "long.jsonl").write_text(
        json.dumps({"context": "a", "continuation": " ".join(["mat"] * 400)}) + "\n"
    )
    (tmp_path / "tasks.yaml").write_text(
        "benchmarks:\n"
        "- {name: ok_lm, category: toy, task_type: language_modeling, data_file: ok.jsonl}\n"
        "- {name: long_lm, category: toy, task_type: language_modeling, data_file: long.jsonl}\n"
    )
    rc = evaluate(
        "--shots", "0", task_file=tmp_path / "tasks.yaml", out=tmp_path / "out", tasks="ok_lm,long_lm"
    )
    assert rc == 1
    summary = read_summary(tmp_path / "out")
    assert [r.benchmark for r in summary.results] == ["ok_lm"]
    assert [f.benchmark for f in summary.failures] == ["long_lm"]


def test_publish_configmap_gets_the_summary(task_file, tmp_path, monkeypatch):
    import benchcal.publish

    calls = []
    monkeypatch.setattr(benchcal.publish, "publish_summary", lambda s, t: calls.append((s, t)))
    assert (
        evaluate("--shots", "0", "--publish-configmap", "ns/run-s1", task_file=task_file, out=tmp_path) == 0
    )
    [(summary, target)] = calls
    assert target == "ns/run-s1" and len(summary.results) == 2


def _publisher_answers(box: Path, name: str, **doc) -> None:
    """A stand-in for the publisher sidecar (benchcal publish): answers the first summary."""
    import threading

    from benchcal import outbox

    def answer() -> None:
        while (raw := outbox.read_regular(box / outbox.SUMMARY)) is None:
            threading.Event().wait(0.05)
        outbox.write_atomic(box / name, json.dumps({"sha256": outbox.digest(raw), **doc}).encode())

    threading.Thread(target=answer, daemon=True).start()


def test_outbox_exits_0_only_once_the_publisher_acknowledged(task_file, tmp_path):
    box = tmp_path / "outbox"
    box.mkdir()
    _publisher_answers(box, "ack.json", configmap="ns/run-s1")
    assert evaluate("--shots", "0", "--outbox", str(box), task_file=task_file, out=tmp_path / "out") == 0
    handed = json.loads((box / "summary.json").read_text())
    assert handed == read_summary(tmp_path / "out").to_dict()


def test_outbox_refusal_exits_with_the_publish_failures_code_and_message(task_file, tmp_path, capsys):
    box = tmp_path / "outbox"
    box.mkdir()
    refusal = 'create ConfigMap ns/run-s1: forbidden (403): configmaps is forbidden: User "system:serviceaccount:ns:job"'
    _publisher_answers(box, "error.json", exit_code=2, message=refusal)
    assert evaluate("--shots", "0", "--outbox", str(box), task_file=task_file, out=tmp_path / "out") == 2
    # printed last, so the termination message (FallbackToLogsOnError: the log's tail) carries it
    assert (
        capsys.readouterr().out.strip().splitlines()[-1] == f"error: the summary was not published: {refusal}"
    )
    assert read_summary(tmp_path / "out").results  # the finished work is kept for a retry


def test_outbox_without_a_publisher_is_not_a_silent_success(task_file, tmp_path, capsys):
    box = tmp_path / "outbox"
    box.mkdir()
    rc = evaluate("--shots", "0", "--outbox", str(box), "--publish-timeout", "1", task_file=task_file,
                  out=tmp_path / "out")  # fmt: skip
    assert rc == 1
    assert "no answer from the publisher sidecar within 1s" in capsys.readouterr().out


@pytest.mark.slow
def test_smollm2_gguf_on_a_real_benchmark(tmp_path, capsys, smollm2_gguf):
    argv = ["evaluate", "--model", str(smollm2_gguf), "--tasks", "arc_easy", "--shots", "0", "--limit", "10",
            "--out", str(tmp_path), "--device", "cpu", "--checkpoint", "smollm2-135m"]  # fmt: skip
    assert main(argv) == 0
    [result] = read_summary(tmp_path).results
    assert result.n == 10 and result.metric == "acc" and 0.0 <= result.accuracy <= 1.0
    assert result.config_key and result.tokens_scored > 0
    assert read_summary(tmp_path).model["content_sha256"]
    before = result_path(tmp_path, "arc_easy", 0, result.config_key).read_bytes()
    assert main(argv) == 0  # resumes: nothing recomputed
    assert result_path(tmp_path, "arc_easy", 0, result.config_key).read_bytes() == before


def test_a_finished_checkpoint_is_not_loaded_again(task_file, tmp_path, monkeypatch, caplog):
    assert evaluate("--shots", "0", task_file=task_file, out=tmp_path) == 0
    import benchcal_eval.models

    def refuse(*args, **kwargs):
        raise AssertionError("load_model called although every pair is finished")

    monkeypatch.setattr(benchcal_eval.models, "load_model", refuse)
    caplog.set_level(logging.INFO, logger="benchcal.evaluate")
    assert evaluate("--shots", "0", task_file=task_file, out=tmp_path) == 0
    assert any("the model was not loaded" in r.getMessage() for r in caplog.records)
    assert len(read_summary(tmp_path).results) == 2


def test_a_url_without_its_driver_is_bad_input_naming_it(task_file, tmp_path, capsys):
    rc = evaluate("--shots", "0", task_file=task_file, out="az://container/run")  # adlfs: not installed
    assert rc == 2
    assert "az:// driver" in capsys.readouterr().err
