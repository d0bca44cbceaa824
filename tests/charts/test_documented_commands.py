"""Every ``helm install``/``helm upgrade`` of the chart that the docs tell users to run renders with
Helm's engine under the chart's values schema (issue 11 item 8: docs/testing.md once documented
``--set operator.namespaces='{}'``, which the schema refuses)."""

from __future__ import annotations

import itertools
import re
import shlex
from typing import Any

import pytest

helm = pytest.importorskip("helm_python")

from tests.charts.rendering import REPO_ROOT, render  # noqa: E402  (after the importorskip guard)

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*helm (install|upgrade) \S+ charts/benchcal\b")


def documented_commands() -> list[tuple[str, str]]:
    """(file:line, command) for each helm install/upgrade line in a code block (continuations joined)."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            if COMMAND.match(lines[i]):
                start, text = i, lines[i]
                while text.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                found.append((f"{doc.name}:{start + 1}", text.split("  #")[0].strip()))
            i += 1
    return found


def _scalar(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def set_values(args: list[str]) -> dict[str, Any]:
    """Helm's ``--set a.b=c,d={x,y}`` (strvals) for what the docs use: scalars and lists."""
    values: dict[str, Any] = {}
    for arg, nxt in itertools.pairwise(args):
        if arg != "--set":
            continue
        for assignment in re.split(r",(?![^{]*})", nxt):
            key, _, raw = assignment.partition("=")
            value: Any = (
                [_scalar(v) for v in raw[1:-1].split(",") if v] if raw.startswith("{") else _scalar(raw)
            )
            node = values
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return values


def test_the_docs_document_install_commands() -> None:
    where = {w.split(":")[0] for w, _ in documented_commands()}
    assert {"operations.md", "testing.md"} <= where, where


@pytest.mark.parametrize(("where", "command"), documented_commands())
def test_each_documented_command_renders_under_the_values_schema(where: str, command: str) -> None:
    args = shlex.split(command)
    assert not {a for a in args if a.startswith("-f") or a.startswith("--values")}, command
    render(set_values(args))


def test_the_old_real_cluster_invocation_is_refused_by_the_schema() -> None:
    """The command docs/testing.md used to give; the schema's refusal is what the docs now avoid."""
    values = set_values(shlex.split("helm install benchcal charts/benchcal --set operator.namespaces='{}'"))
    assert values == {"operator": {"namespaces": []}}
    with pytest.raises(helm.HelmError, match="additional properties 'namespaces' not allowed"):
        render(values)
