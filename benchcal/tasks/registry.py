"""The benchmark registry: what each benchmark is and how its prompts are laid out.

The built-in gauntlet (``gauntlet.yaml`` next to this file, data under ``benchcal/data/gauntlet``)
and user task files go through the same parser, ``parse_registry``, so a user benchmark is a
first-class citizen: same schema, same validation, same prompt rules.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from benchcal.errors import BadInput

TASK_TYPES = (
    "language_modeling",
    "multiple_choice",
    "schema",
    "generation_task_with_answers",
    "code_evaluation",
)
VERSIONS = ("v0.1", "v0.2", "v0.3")
PRESETS = {f"gauntlet-{v}": v for v in VERSIONS}

PACKAGE_DIR = Path(__file__).resolve().parents[1]
BUILTIN_REGISTRY = Path(__file__).resolve().with_name("gauntlet.yaml")
BUILTIN_DATA_DIR = PACKAGE_DIR / "data" / "gauntlet"

# llm-foundry's defaults, used when neither the entry nor the file's `defaults` sets an option.
_STRING_OPTIONS = {
    "continuation_delimiter": " ",
    "example_delimiter": "\n",
    "prompt_string": "",
    "question_prelimiter": "",
    "cot_delimiter": "",
}
_KNOWN_KEYS = {
    "name", "category", "task_type", "data_file", "random_baseline", "shots", "standard_shots",
    "has_categories", "stop", "max_new_tokens", "do_normalization", "pass_at_k",
    "generations_per_sample", "fewshot_random_seed", "unavailable", *_STRING_OPTIONS,
}  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: data, task type and the llm-foundry prompt options that shape its prompts."""

    name: str
    category: str
    task_type: str
    data_file: str  # absolute path of the JSONL (or .jsonl.gz) file
    random_baseline: float
    shots: dict[str, int | None] = field(default_factory=dict)  # gauntlet version -> num_fewshot
    continuation_delimiter: str = " "
    example_delimiter: str = "\n"
    prompt_string: str = ""
    question_prelimiter: str = ""
    cot_delimiter: str = ""
    has_categories: bool = False
    stop: tuple[str, ...] = ()  # generation: early-stopping strings
    max_new_tokens: int | None = None  # generation: None = derived from the data, as llm-foundry
    do_normalization: bool = True
    pass_at_k: int = 1
    generations_per_sample: int = 1
    fewshot_random_seed: int = 1234
    available: bool = True
    unavailable_reason: str = ""
    standard_shots: int | None = None  # industry-standard shot count, if any

    def __hash__(self) -> int:  # dict field: hash by identity-defining fields only
        return hash((self.name, self.data_file, self.task_type))


def _fail(where: str, message: str) -> BadInput:
    return BadInput(f"{where}: {message}")


def _get_str(entry: dict, key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or (value == "" and default is None):
        raise _fail(where, f"'{key}' must be a non-empty string, got {value!r}")
    return value


def _get_int(entry: dict, key: str, where: str, default: int | None, minimum: int) -> int | None:
    value = entry.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _get_bool(entry: dict, key: str, where: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise _fail(where, f"'{key}' must be true or false, got {value!r}")
    return value


def _parse_shots(entry: dict, where: str) -> dict[str, int | None]:
    raw = entry.get("shots", {})
    if not isinstance(raw, dict):
        raise _fail(where, f"'shots' must map gauntlet versions ({', '.join(VERSIONS)}) to a shot count")
    unknown = sorted(str(k) for k in raw if k not in VERSIONS)
    if unknown:
        raise _fail(where, f"'shots' has unknown version(s) {unknown}; use {list(VERSIONS)}")
    return {v: _get_int(raw, v, f"{where}.shots", None, 0) for v in VERSIONS}


def _resolve_data(base_dir: Path, data_file: str) -> tuple[Path, bool]:
    """The file to read (``X`` or its gzip copy ``X.gz``) and whether it exists."""
    path = Path(data_file).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    for candidate in (path, Path(f"{path}.gz")):
        if candidate.is_file():
            return candidate, True
    return path, False


def _parse_entry(entry: Any, defaults: dict, base_dir: Path, where: str) -> TaskSpec:
    if not isinstance(entry, dict):
        raise _fail(
            where, "each benchmark must be a mapping with at least name, category, task_type, data_file"
        )
    merged = {**defaults, **entry}
    unknown = sorted(set(merged) - _KNOWN_KEYS)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown}; allowed: {sorted(_KNOWN_KEYS)}")
    name = _get_str(merged, "name", where)
    where = f"{where} ({name})"
    task_type = _get_str(merged, "task_type", where)
    if task_type == "question_answering":  # llm-foundry's pre-2024 name for the same task type
        task_type = "generation_task_with_answers"
    if task_type not in TASK_TYPES:
        raise _fail(where, f"task_type {task_type!r} is not one of {list(TASK_TYPES)}")
    baseline = merged.get("random_baseline", 0.0)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not 0 <= baseline < 1:
        raise _fail(where, f"'random_baseline' must be a number in [0, 1), got {baseline!r}")
    stop = merged.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise _fail(where, f"'stop' must be a list of non-empty strings, got {stop!r}")
    options = {k: _get_str(merged, k, where, default=d) for k, d in _STRING_OPTIONS.items()}
    reason = merged.get("unavailable", "")
    if not isinstance(reason, str):
        raise _fail(where, "'unavailable' must be a string saying why the benchmark cannot run")
    path, exists = _resolve_data(base_dir, _get_str(merged, "data_file", where))
    if not exists and not reason:
        raise _fail(where, f"data file {path} (or {path}.gz) does not exist; fix 'data_file'")
    spec = TaskSpec(
        name=name,
        category=_get_str(merged, "category", where),
        task_type=task_type,
        data_file=str(path),
        random_baseline=float(baseline),
        shots=_parse_shots(merged, where),
        has_categories=_get_bool(merged, "has_categories", where, False),
        stop=tuple(stop),
        max_new_tokens=_get_int(merged, "max_new_tokens", where, None, 1),
        do_normalization=_get_bool(merged, "do_normalization", where, True),
        pass_at_k=_get_int(merged, "pass_at_k", where, 1, 1) or 1,
        generations_per_sample=_get_int(merged, "generations_per_sample", where, 1, 1) or 1,
        fewshot_random_seed=_get_int(merged, "fewshot_random_seed", where, 1234, 0) or 0,
        available=not reason,
        unavailable_reason=" ".join(reason.split()),
        standard_shots=_get_int(merged, "standard_shots", where, None, 0),
        **options,
    )
    if spec.generations_per_sample < spec.pass_at_k:
        raise _fail(where, "'generations_per_sample' must be >= 'pass_at_k'")
    return spec


def parse_registry(doc: Any, base_dir: Path, source: str) -> list[TaskSpec]:
    """Parse a registry document (``defaults`` + ``benchmarks``); paths are relative to ``base_dir``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise BadInput(f"{source}: expected a mapping with a 'benchmarks' list (see docs/tasks.md)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise BadInput(f"{source}: 'defaults' must be a mapping")
    specs: list[TaskSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc["benchmarks"]):
        spec = _parse_entry(entry, defaults, base_dir, f"{source}: benchmarks[{i}]")
        if spec.name in seen:
            raise BadInput(f"{source}: benchmarks[{i}]: duplicate benchmark name {spec.name!r}")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInput(f"{path}: task file not found") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML: {exc}") from exc


def load_task_file(path: str | Path) -> list[TaskSpec]:
    """User benchmarks from a YAML in the registry's schema; data paths relative to the YAML."""
    path = Path(path).expanduser().resolve()
    return parse_registry(_read_yaml(path), path.parent, str(path))


@lru_cache(maxsize=1)
def _builtin() -> tuple[TaskSpec, ...]:
    return tuple(parse_registry(_read_yaml(BUILTIN_REGISTRY), BUILTIN_DATA_DIR, str(BUILTIN_REGISTRY)))


def list_tasks(include_unavailable: bool = True) -> list[TaskSpec]:
    """Every built-in benchmark, in registry order."""
    return [t for t in _builtin() if include_unavailable or t.available]


def _check_available(task: TaskSpec) -> TaskSpec:
    if not task.available:
        raise BadInput(f"benchmark {task.name!r} is unavailable: {task.unavailable_reason}")
    return task


def get_task(name: str, extra: tuple[TaskSpec, ...] | list[TaskSpec] = ()) -> TaskSpec:
    """The benchmark called ``name`` (user tasks in ``extra`` shadow built-ins)."""
    pool = {t.name: t for t in (*_builtin(), *extra)}
    if name in pool:
        return _check_available(pool[name])
    close = difflib.get_close_matches(name, list(pool), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run 'benchcal tasks' to list them"
    raise BadInput(f"unknown benchmark {name!r}{hint}")


def _version(preset: str) -> str:
    if preset not in PRESETS:
        raise BadInput(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    return PRESETS[preset]


def preset_shots(preset: str) -> dict[str, int]:
    """Benchmark -> the shot count that gauntlet version aggregates (available benchmarks only)."""
    version = _version(preset)
    return {
        t.name: n for t in list_tasks(include_unavailable=False) if (n := t.shots.get(version)) is not None
    }


def standard_shots(name: str) -> int | None:
    """The industry-standard shot count of a benchmark, or None when there is no such standard."""
    pool = {t.name: t for t in _builtin()}
    if name not in pool:
        get_task(name)  # raises with a did-you-mean
    return pool[name].standard_shots


def resolve_tasks(selector: str, extra: tuple[TaskSpec, ...] | list[TaskSpec] = ()) -> list[TaskSpec]:
    """Benchmarks for ``"a,b"`` | ``"all"`` | ``"category:NAME"`` | ``"preset:gauntlet-v0.1"``.

    ``extra`` holds user tasks (from ``load_task_file``); they shadow built-ins of the same name
    (also inside presets) and are included by ``all`` and ``category:``. Unavailable benchmarks are skipped by the group
    selectors and raise BadInput when named explicitly.
    """
    if not isinstance(selector, str) or not selector.strip():
        raise BadInput("tasks selector is empty; use 'a,b', 'all', 'category:NAME' or 'preset:gauntlet-v0.1'")
    selector = selector.strip()
    pool = {t.name: t for t in (*_builtin(), *extra)}
    if selector == "all":
        return [t for t in pool.values() if t.available]
    if selector.startswith("category:"):
        category = selector.split(":", 1)[1]
        found = [t for t in pool.values() if t.category == category and t.available]
        if not found:
            known = sorted({t.category for t in pool.values()})
            raise BadInput(f"no available benchmark in category {category!r}; categories: {known}")
        return found
    if selector.startswith("preset:"):
        # A user task named like an unavailable built-in (e.g. their own squad copy) fills its slot.
        version = _version(selector.split(":", 1)[1])
        members = [t.name for t in _builtin() if t.shots.get(version) is not None]
        return [pool[name] for name in members if pool[name].available]
    names = [n.strip() for n in selector.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise BadInput(f"tasks selector {selector!r} names a benchmark twice")
    return [get_task(n, extra) for n in names]
