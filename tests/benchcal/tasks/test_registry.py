"""The task registry: gauntlet contents, selectors, user task files and `benchcal tasks`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchcal.app.cli import main
from benchcal.errors import BadInput
from benchcal.tasks.loading import load_examples
from benchcal.tasks.registry import (
    get_task,
    list_tasks,
    load_task_file,
    preset_shots,
    resolve_tasks,
    standard_shots,
)

# why each is missing, from ../shared/gauntlet/REBUILT.md
UNAVAILABLE = {
    "coqa": "no copy of the CoQA dev set was available",
    "bigbench_elementary_math_qa": "which choices were dropped cannot be recovered",
    "bbq": "MosaicML reduced BBQ to two choices, and which two",
}
CORE = ("world_knowledge", "commonsense_reasoning", "language_understanding",
        "symbolic_problem_solving", "reading_comprehension")  # fmt: skip


def _in_version(version: str) -> Counter:
    return Counter(t.category for t in list_tasks() if t.shots[version] is not None and t.category in CORE)


def test_gauntlet_versions_have_the_published_benchmark_counts():
    # v0.1: 45 core (7/8/7/15/8); v0.2: 33 (6/7/4/10/6); v0.3: 31 (aqua, agi_eval_sat_math dropped).
    assert _in_version("v0.1") == Counter(dict(zip(CORE, (7, 8, 7, 15, 8), strict=True)))
    assert _in_version("v0.2") == Counter(dict(zip(CORE, (6, 7, 4, 10, 6), strict=True)))
    assert sum(_in_version("v0.3").values()) == 31
    assert sum(1 for t in list_tasks() if t.category == "safety") == 4
    assert sum(1 for t in list_tasks() if t.category == "programming") == 8


def test_unavailable_benchmarks_are_listed_and_refused_with_a_reason():
    assert {t.name for t in list_tasks() if not t.available} == set(UNAVAILABLE)
    assert set(UNAVAILABLE).isdisjoint(t.name for t in list_tasks(include_unavailable=False))
    for name, why in UNAVAILABLE.items():
        with pytest.raises(BadInput, match=rf"'{name}' is unavailable: its data file .*jsonl.*{why}"):
            get_task(name)
    assert get_task("squad").available  # rebuilt from the SQuAD v1.1 dev set


def test_task_options_match_the_gauntlet_yamls():
    mmlu = get_task("mmlu")
    assert (mmlu.task_type, mmlu.random_baseline, mmlu.continuation_delimiter) == (
        "multiple_choice",
        0.25,
        "\nAnswer: ",
    )
    assert mmlu.has_categories and mmlu.shots == {"v0.1": 10, "v0.2": 5, "v0.3": 5}
    gsm = get_task("gsm8k_v03")
    assert gsm.stop == ("\n\n", "Question:") and gsm.do_normalization is False
    assert gsm.cot_delimiter == "The answer is " and gsm.shots["v0.3"] == 0
    svamp = get_task("svamp")
    assert (
        svamp.question_prelimiter == "Q: " and svamp.continuation_delimiter == "\nUsing the formula below:\n"
    )
    assert get_task("human_eval").generations_per_sample == 5
    assert get_task("copa").continuation_delimiter == " " and get_task("copa").example_delimiter == "\n"


def test_presets_and_standard_shots():
    v02 = preset_shots("gauntlet-v0.2")
    assert v02["mmlu"] == 5 and v02["hellaswag"] == 0 and v02["openbook_qa"] == 10 and v02["gsm8k"] == 8
    assert v02["squad"] == 3 and "coqa" not in v02 and "bigbench_misconceptions" not in v02
    v03 = preset_shots("gauntlet-v0.3")
    assert v03["gsm8k_v03"] == 0 and v03["svamp_v03"] == 5 and "gsm8k" not in v03
    assert preset_shots("gauntlet-v0.1")["winograd"] == 0
    with pytest.raises(BadInput, match="unknown preset"):
        preset_shots("gauntlet-v9")
    assert standard_shots("mmlu") == 5 and standard_shots("copa") is None
    with pytest.raises(BadInput, match="did you mean"):
        standard_shots("mmluu")


def test_selectors():
    assert [t.name for t in resolve_tasks("copa, piqa")] == ["copa", "piqa"]
    assert {t.name for t in resolve_tasks("category:safety")} == {
        "winogender_mc_female", "winogender_mc_male", "enterprise_pii_classification"}  # fmt: skip
    assert len(resolve_tasks("all")) == len(list_tasks()) - len(UNAVAILABLE)
    assert [t.name for t in resolve_tasks("preset:gauntlet-v0.3")] == list(preset_shots("gauntlet-v0.3"))
    for bad, message in [("", "empty"), ("copa,copa", "twice"), ("category:nope", "no available"),
                         ("arc_esy", "did you mean arc_easy")]:  # fmt: skip
        with pytest.raises(BadInput, match=message):
            resolve_tasks(bad)


def _write_user_task(
    tmp_path: Path, entry: str, rows: str = '{"context": "x", "continuation": "y"}\n'
) -> Path:
    (tmp_path / "mine.jsonl").write_text(rows, encoding="utf-8")
    path = tmp_path / "tasks.yaml"
    path.write_text(f"benchmarks:\n  - {entry}\n", encoding="utf-8")
    return path


def test_user_task_file_goes_through_the_same_parser(tmp_path):
    path = _write_user_task(tmp_path, "{name: mine, category: custom, task_type: language_modeling, "
                                      "data_file: mine.jsonl, shots: {v0.2: 3}, continuation_delimiter: ' = '}")  # fmt: skip
    (task,) = load_task_file(path)
    assert task.data_file == str(tmp_path / "mine.jsonl")
    assert task.shots == {"v0.1": None, "v0.2": 3, "v0.3": None}
    assert task.continuation_delimiter == " = " and task.example_delimiter == "\n"
    assert load_examples(task) == [{"context": "x", "continuation": "y"}]
    assert [t.name for t in resolve_tasks("mine,copa", extra=[task])] == ["mine", "copa"]
    assert task in resolve_tasks("category:custom", extra=[task])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: m, category: c, task_type: language_modeling, data_file: other.jsonl}", "other.jsonl"),
        ("{name: m, category: c, task_type: ranking, data_file: mine.jsonl}", "task_type 'ranking'"),
        (
            "{name: m, category: c, task_type: language_modeling, data_file: mine.jsonl, colour: red}",
            "colour",
        ),
        ("{name: m, category: c, task_type: language_modeling, data_file: mine.jsonl, shots: {v1: 3}}", "v1"),
        (
            "{name: m, category: c, task_type: schema, data_file: mine.jsonl, random_baseline: 2}",
            "random_baseline",
        ),
        ("{category: c, task_type: schema, data_file: mine.jsonl}", "'name'"),
    ],
)
def test_bad_task_files_name_the_entry_and_field(tmp_path, entry, message):
    path = _write_user_task(tmp_path, entry)
    with pytest.raises(BadInput, match=message) as info:
        load_task_file(path)
    assert "benchmarks[0]" in str(info.value)


def test_duplicate_names_and_missing_file(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"context": "x", "continuation": "y"}\n', encoding="utf-8")
    entry = "{name: m, category: c, task_type: language_modeling, data_file: mine.jsonl}"
    path = tmp_path / "dup.yaml"
    path.write_text(f"benchmarks:\n  - {entry}\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(BadInput, match="duplicate benchmark name 'm'"):
        load_task_file(path)
    with pytest.raises(BadInput, match="task file not found"):
        load_task_file(tmp_path / "absent.yaml")


def test_tasks_cli_table_and_json(capsys, tmp_path):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    header, _rule, *rows = out.splitlines()
    assert header.split() == [
        "name",
        "category",
        "type",
        "baseline",
        "v0.1",
        "v0.2",
        "v0.3",
        "examples",
        "status",
    ]
    mmlu = next(r for r in rows if r.startswith("mmlu "))
    assert mmlu.split() == [
        "mmlu",
        "world_knowledge",
        "multiple_choice",
        "0.25",
        "10",
        "5",
        "5",
        "14042",
        "ok",
    ]
    coqa = next(r for r in rows if r.startswith("coqa "))
    assert coqa.split()[-2:] == ["-", "UNAVAILABLE"]
    assert next(r for r in rows if r.startswith("squad ")).split()[-2:] == ["10570", "ok"]
    assert len({len(r) for r in rows[:5]}) == 1  # aligned
    assert "coqa: unavailable:" in out

    path = _write_user_task(
        tmp_path, "{name: mine, category: custom, task_type: language_modeling, data_file: mine.jsonl}"
    )
    assert main(["tasks", "--json", "--task-file", str(path)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(list_tasks()) + 1
    assert records[-1]["name"] == "mine" and records[-1]["examples"] == 1
    assert main(["tasks", "--tasks", "bbq"]) == 2


def test_a_user_copy_of_an_unavailable_benchmark_fills_its_preset_slot(tmp_path):
    path = _write_user_task(tmp_path, "{name: coqa, category: reading_comprehension, "
                                      "task_type: language_modeling, data_file: mine.jsonl}")  # fmt: skip
    (mine,) = load_task_file(path)
    assert "coqa" not in {t.name for t in resolve_tasks("preset:gauntlet-v0.2")}
    with_user = resolve_tasks("preset:gauntlet-v0.2", extra=[mine])
    assert mine in with_user and get_task("coqa", extra=[mine]) is mine
