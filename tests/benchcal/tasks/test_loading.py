"""The shipped gauntlet data: integrity against the manifest, loading, and malformed-JSONL errors."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from benchcal.errors import BadInput
from benchcal.tasks.loading import MANIFEST, load_examples, read_rows
from benchcal.tasks.registry import BUILTIN_DATA_DIR, get_task, list_tasks


def _build_data_module():
    path = BUILTIN_DATA_DIR.parent / "build_data.py"
    spec = importlib.util.spec_from_file_location("benchcal_build_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def test_shipped_files_match_the_manifest_byte_for_byte(manifest):
    shipped = {p.relative_to(BUILTIN_DATA_DIR).as_posix() for p in BUILTIN_DATA_DIR.rglob("*.gz")}
    assert shipped == {f"{e['file']}.gz" for e in manifest["files"]}
    for entry in manifest["files"]:
        packed = (BUILTIN_DATA_DIR / f"{entry['file']}.gz").read_bytes()
        assert hashlib.sha256(packed).hexdigest() == entry["gz_sha256"], entry["file"]
        assert packed[4:8] == b"\0\0\0\0", "gzip header mtime must be 0 (deterministic)"
        raw = gzip.decompress(packed)
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], entry["file"]
        assert sum(1 for line in raw.splitlines() if line.strip()) == entry["rows"]


def test_only_the_files_the_registry_uses_are_shipped(manifest):
    used = {
        str(Path(t.data_file).relative_to(BUILTIN_DATA_DIR)) for t in list_tasks(include_unavailable=False)
    }
    assert {f"{e['file']}.gz" for e in manifest["files"]} == used
    assert {e["file"] for e in manifest["files"] if e["rebuilt"]} == {
        "world_knowledge/mmlu.jsonl", "language_understanding/hellaswag.jsonl",
        "reading_comprehension/squad.jsonl"}  # fmt: skip


def test_manifest_matches_the_shared_originals(manifest, shared_dir):
    source = shared_dir / "gauntlet" / "local_data"
    if not source.is_dir():
        pytest.skip(f"no shared gauntlet data at {source}")
    for entry in manifest["files"]:
        raw = (source / entry["file"]).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], entry["file"]


def test_deterministic_gzip_and_git_blob_id():
    build = _build_data_module()
    assert build.deterministic_gzip(b"abc\n") == build.deterministic_gzip(b"abc\n")
    assert gzip.decompress(build.deterministic_gzip(b"abc\n")) == b"abc\n"
    # `printf 'abc\n' | git hash-object --stdin`
    assert build.git_blob_sha1(b"abc\n") == "8baef1b4abc478178b004d62031cf7fe6db6f903"


def test_every_available_benchmark_loads_with_the_manifest_row_count(manifest):
    rows_by_file = {str(BUILTIN_DATA_DIR / f"{e['file']}.gz"): e["rows"] for e in manifest["files"]}
    for task in list_tasks(include_unavailable=False):
        assert len(load_examples(task)) == rows_by_file[task.data_file], task.name


def test_rebuilt_and_sanity_facts():
    mmlu = load_examples(get_task("mmlu"))
    counts = Counter(r["category"] for r in mmlu)
    assert len(mmlu) == 14042 and len(counts) == 57 and counts["professional_law"] == 1534
    assert {len(r["choices"]) for r in load_examples(get_task("hellaswag"))} == {4}
    assert {r["gold"] for r in load_examples(get_task("bigbench_strange_stories"))} == {0}
    assert {len(r["choices"]) for r in load_examples(get_task("siqa"))} == {2}
    jeopardy = Counter(r["category"] for r in load_examples(get_task("jeopardy")))
    assert jeopardy["literature"] == 490 and len(jeopardy) == 5
    # strings are stripped on load, except code prompts (their trailing newline matters)
    assert load_examples(get_task("simple_arithmetic_withspaces"))[0]["continuation"] == "-734"
    assert load_examples(get_task("human_eval"))[0]["prompt"].endswith("\n")


def _rows(tmp_path: Path, text: str, task_type: str, *, categories: bool = False, gz: bool = False):
    path = tmp_path / ("data.jsonl.gz" if gz else "data.jsonl")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path, lambda: read_rows(path, task_type, categories)


@pytest.mark.parametrize(
    ("text", "task_type", "line", "message"),
    [
        ('{"query": "q", "choices": ["a", "b"], "gold": 0}\n{"query": "q", "choices": ["a", "b"], "gold": 0\n',
         "multiple_choice", 2, "not valid JSON"),
        ('{"context": "c"}\n', "language_modeling", 1, "missing key 'continuation'"),
        ('{"context": "c", "continuation": 4}\n', "language_modeling", 1, "'continuation' must be a string"),
        ('{"query": "q", "choices": ["a", "b"], "gold": 2}\n', "multiple_choice", 1, "'gold' = 2 is out of range"),
        ('{"query": "q", "choices": ["a", "b"], "gold": true}\n', "multiple_choice", 1, "'gold' must be an integer"),
        ('{"query": "q", "choices": ["a", "b"], "gold": 0}\n\n{"query": "q", "choices": ["a", "b", "c"], "gold": 0}\n',
         "multiple_choice", 3, "3 options, but line 1 has 2"),
        ('{"context_options": ["a", "b"], "continuation": "c", "gold": 0}\n'
         '{"context_options": ["a"], "continuation": "c", "gold": 0}\n', "schema", 2, "at least 2"),
        ('{"context": "c", "answer": "a"}\n{"context": "c", "answer": "a", "chain_of_thought": "t"}\n',
         "generation_task_with_answers", 2, "chain_of_thought"),
        ('["context", "continuation"]\n', "language_modeling", 1, "JSON object"),
        ('{"query": "q", "choices": ["a", " "], "gold": 0}\n', "multiple_choice", 1, "empty string"),
    ],
)  # fmt: skip
def test_malformed_jsonl_names_file_and_line(tmp_path, text, task_type, line, message):
    path, read = _rows(tmp_path, text, task_type)
    with pytest.raises(BadInput, match=message) as info:
        read()
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_category_and_empty_file(tmp_path):
    _, read = _rows(tmp_path, '{"context": "c", "continuation": "d"}\n', "language_modeling", categories=True)
    with pytest.raises(BadInput, match="missing key 'category'"):
        read()
    _, read = _rows(tmp_path, "\n", "language_modeling")
    with pytest.raises(BadInput, match="no examples"):
        read()


def test_gzip_user_files_are_read_transparently_and_stripped(tmp_path):
    _, read = _rows(tmp_path, '{"context": " c ", "continuation": " d\\n"}\n', "language_modeling", gz=True)
    assert read() == [{"context": "c", "continuation": "d"}]
