"""The CRD's CEL rules (x-kubernetes-validations), evaluated with a CEL interpreter.

The API server is the only place these run in production and the local test server does not
evaluate them, so each rule is checked here against values that must pass and must fail.
"""

from __future__ import annotations

import pytest

from benchcal import api

from .test_crd import _walk

celpy = pytest.importorskip("celpy")

OK_MODEL = {"builtin": "tiny-series/s1"}
CKPT = {"name": "s1", "model": OK_MODEL, "flops": 1.0}
SPEC = {"checkpoints": [CKPT], "suite": {"preset": "gauntlet-v0.1"}, "classification": {"alpha": 0.05}}

# (schema path, message prefix, self, oldSelf or None, expected)
CASES = [
    ("", "metadata.name must be", {"metadata": {"name": "tiny-demo"}}, None, True),
    ("", "metadata.name must be", {"metadata": {"name": "Tiny_Demo"}}, None, False),
    ("", "metadata.name must be", {"metadata": {"name": "a" * 64}}, None, False),
    ("spec", "spec.checkpoints is immutable", SPEC, SPEC, True),
    ("spec", "spec.checkpoints is immutable", SPEC, {**SPEC, "checkpoints": [{**CKPT, "flops": 2.0}]}, False),
    ("spec", "spec.suite is immutable", SPEC, {**SPEC, "suite": {"preset": "gauntlet-v0.2"}}, False),
    ("spec", "spec.suite is immutable", {**SPEC, "suspend": True}, SPEC, True),
    ("spec", "spec.classification is immutable", SPEC, {**SPEC, "classification": {"alpha": 0.01}}, False),
    ("spec", "spec.classification is immutable", SPEC, SPEC, True),
    ("spec", "spec.results is immutable", SPEC, SPEC, True),
    ("spec", "spec.results is immutable", {**SPEC, "results": {"path": "/r"}}, SPEC, False),
    (
        "spec",
        "spec.results is immutable",
        {**SPEC, "results": {"path": "/r"}},
        {**SPEC, "results": {"path": "/s"}},
        False,
    ),
    ("spec.checkpoints", "checkpoint names must be unique", [CKPT, {**CKPT, "name": "s2"}], None, True),
    ("spec.checkpoints", "checkpoint names must be unique", [CKPT, CKPT], None, False),
    ("spec.checkpoints[]", "set either flops", CKPT, None, True),
    (
        "spec.checkpoints[]",
        "set either flops",
        {"name": "s", "model": OK_MODEL, "params": 1.0, "tokens": 2.0},
        None,
        True,
    ),
    ("spec.checkpoints[]", "set either flops", {**CKPT, "params": 1.0}, None, False),
    ("spec.checkpoints[]", "set either flops", {"name": "s", "model": OK_MODEL}, None, False),
    (
        "spec.checkpoints[]",
        "params and tokens must",
        {"name": "s", "model": OK_MODEL, "params": 1.0},
        None,
        False,
    ),
    (
        "spec.checkpoints[]",
        "params and tokens must",
        {"name": "s", "model": OK_MODEL, "params": 1.0, "tokens": 1.0},
        None,
        True,
    ),
    ("spec.checkpoints[].model", "set exactly one model source", {"pvc": {"claimName": "c"}}, None, True),
    (
        "spec.checkpoints[].model",
        "set exactly one model source",
        {"path": "/a", "uri": "s3://b"},
        None,
        False,
    ),
    ("spec.checkpoints[].model", "set exactly one model source", {}, None, False),
    ("spec.checkpoints[].model.pvc.path", "pvc.path must be relative", "models/s1", None, True),
    ("spec.checkpoints[].model.pvc.path", "pvc.path must be relative", "/abs", None, False),
    ("spec.checkpoints[].model.pvc.path", "pvc.path must be relative", "a/../../etc", None, False),
    ("spec.suite", "set exactly one of suite.preset", {"preset": "gauntlet-v0.1"}, None, True),
    (
        "spec.suite",
        "set exactly one of suite.preset",
        {"preset": "gauntlet-v0.1", "benchmarks": []},
        None,
        True,
    ),
    ("spec.suite", "set exactly one of suite.preset", {"benchmarks": [{"name": "copa"}]}, None, True),
    (
        "spec.suite",
        "set exactly one of suite.preset",
        {"preset": "gauntlet-v0.1", "benchmarks": [{"name": "copa"}]},
        None,
        False,
    ),
    ("spec.suite", "set exactly one of suite.preset", {"benchmarks": []}, None, False),
    ("spec.evaluator", "evaluator.env must not", {"env": [{"name": "EXTRA", "value": "1"}]}, None, True),
    ("spec.evaluator", "evaluator.env must not", {}, None, True),
    ("spec.evaluator", "evaluator.env must not", {"env": [{"name": "HF_TOKEN", "value": "x"}]}, None, False),
    (
        "spec.evaluator",
        "evaluator.env must not",
        {"env": [{"name": "BENCHCAL_RUN", "value": "x"}]},
        None,
        False,
    ),
    ("spec.results", "set exactly one results location", {"uri": "s3://b/r"}, None, True),
    ("spec.results", "set exactly one results location", {"uri": "s3://b/r", "path": "/r"}, None, False),
    ("spec.results.pvc.path", "results.pvc.path must be relative", "", None, True),
    ("spec.results.pvc.path", "results.pvc.path must be relative", "../x", None, False),
]


def _rules() -> dict[tuple[str, str], str]:
    found = {}
    for path, node in _walk(api.openapi_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            found[(path, rule["message"])] = rule["rule"]
    return found


def _evaluate(rule: str, value, old) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    activation = {"self": celpy.json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return bool(program.evaluate(activation))


@pytest.mark.parametrize(("path", "message", "value", "old", "expected"), CASES)
def test_cel_rule(path, message, value, old, expected):
    matches = [rule for (p, m), rule in _rules().items() if p == path and m.startswith(message)]
    assert len(matches) == 1, f"no single rule at {path!r} with message {message!r}"
    assert _evaluate(matches[0], value, old) is expected


def test_every_rule_has_a_passing_and_a_failing_case():
    for path, message in _rules():
        outcomes = {expected for p, m, _, _, expected in CASES if p == path and message.startswith(m)}
        assert outcomes == {True, False}, f"{path!r} {message!r}: add cases that pass and fail"
