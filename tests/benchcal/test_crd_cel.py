"""The CRD's CEL rules (x-kubernetes-validations), evaluated with a CEL interpreter.

Each rule is checked here against values that must pass and must fail. cel-python compares
lists element by element; a real API server compares ``x-kubernetes-list-type: map`` and ``set``
lists ignoring order (Kubernetes CEL: "[1, 2] == [2, 1]" for sets), so values are put in a
canonical order along their schema first: reordering spec.checkpoints passes the immutability
rule, as on a real cluster (issue 11 item 6; status follows spec order, the reducer sorts by FLOPs).
"""

from __future__ import annotations

import pytest

from benchcal import api

from .test_crd import _walk

celpy = pytest.importorskip("celpy")

OK_MODEL = {"builtin": "tiny-series/s1"}
CKPT = {"name": "s1", "model": OK_MODEL, "flops": 1.0}
CKPT2 = {"name": "s2", "model": OK_MODEL, "flops": 2.0}
CKPT3 = {"name": "s3", "model": OK_MODEL, "flops": 3.0}
THREE = [CKPT, CKPT2, CKPT3]
SAME_FLOPS = [CKPT, CKPT2, {**CKPT3, "flops": 2.0}]  # three checkpoints, two distinct FLOPs
PT3 = {"name": "s3", "model": OK_MODEL, "params": 0.5, "tokens": 1.0}  # flops = 6 * 0.5 * 1 = 3
SPEC = {"checkpoints": [CKPT], "suite": {"preset": "gauntlet-v0.1"}, "classification": {"alpha": 0.05}}
EXISTS = {"key": "gpu", "operator": "Exists"}
PT = {"name": "s1", "model": OK_MODEL, "params": 1.0, "tokens": 2.0}
SUITE = {
    "benchmarks": [{"name": "copa"}, {"name": "piqa", "shots": [0]}],
    "shots": [0, 1],
    "seed": 1,
    "fewshotSampling": "nested",
}
SUITE2 = {**SUITE, "benchmarks": list(reversed(SUITE["benchmarks"]))}  # reordered: the same on a server
SUITE3 = {**SUITE, "benchmarks": [*SUITE["benchmarks"], {"name": "arc_easy"}]}
LISTED = {**SPEC, "suite": SUITE}
KEPT = {**LISTED, "results": {"pvc": {"claimName": "r"}}}
KEPT3 = {**KEPT, "suite": SUITE3}

# (schema path, message prefix, self, oldSelf or None, expected)
DISTINCT = "spec.checkpoints needs at least three distinct"
CASES = [
    # the reducer's MIN_CHECKPOINTS distinct FLOPs, refused at admission (minItems alone counts names)
    ("spec.checkpoints", DISTINCT, THREE, None, True),
    ("spec.checkpoints", DISTINCT, list(reversed(THREE)), None, True),
    ("spec.checkpoints", DISTINCT, [CKPT, CKPT2], None, False),
    ("spec.checkpoints", DISTINCT, SAME_FLOPS, None, False),
    ("spec.checkpoints", DISTINCT, [*SAME_FLOPS, {**CKPT3, "name": "s4", "flops": 9.0}], None, True),
    ("spec.checkpoints", DISTINCT, [CKPT, CKPT2, PT3], None, True),  # 6 * params * tokens is resolved
    ("spec.checkpoints", DISTINCT, [CKPT, CKPT2, {**PT3, "tokens": 2.0 / 3.0}], None, False),  # = 2.0
    ("spec.checkpoints", DISTINCT, [{**c, "flops": 1e20} for c in THREE], None, False),
    ("", "metadata.name must be", {"metadata": {"name": "tiny-demo"}}, None, True),
    ("", "metadata.name must be", {"metadata": {"name": "Tiny_Demo"}}, None, False),
    ("", "metadata.name must be", {"metadata": {"name": "a" * 64}}, None, False),
    # growth (issue 15): checkpoints come and go, a staying one keeps what its results came from
    ("spec.checkpoints[]", "a checkpoint that stays", CKPT, CKPT, True),
    ("spec.checkpoints[]", "a checkpoint that stays", CKPT, {**CKPT, "flops": 2.0}, False),
    (
        "spec.checkpoints[]",
        "a checkpoint that stays",
        CKPT,
        {**CKPT, "model": {"builtin": "tiny-series/s2"}},
        False,
    ),
    ("spec.checkpoints[]", "a checkpoint that stays", {**CKPT, "model": {"hub": {"id": "o/m"}}}, CKPT, False),
    ("spec.checkpoints[]", "a checkpoint that stays", PT, PT, True),
    ("spec.checkpoints[]", "a checkpoint that stays", PT, {**PT, "tokens": 3.0}, False),
    ("spec.checkpoints[]", "a checkpoint that stays", CKPT, PT, False),
    # the suite: benchmarks and shots grow only where results persist; what keys a result never changes
    ("spec", "spec.suite can grow only in a run with spec.results", SPEC, SPEC, True),
    ("spec", "spec.suite can grow only in a run with spec.results", {**SPEC, "suspend": True}, SPEC, True),
    (
        "spec",
        "spec.suite can grow only in a run with spec.results",
        LISTED,
        {**LISTED, "suite": SUITE2},
        True,
    ),
    (
        "spec",
        "spec.suite can grow only in a run with spec.results",
        {**LISTED, "suite": SUITE3},
        LISTED,
        False,
    ),
    ("spec", "spec.suite can grow only in a run with spec.results", KEPT3, KEPT, True),
    ("spec.suite", "spec.suite.preset, seed", SUITE, SUITE, True),
    ("spec.suite", "spec.suite.preset, seed", SUITE3, SUITE, True),
    ("spec.suite", "spec.suite.preset, seed", {**SUITE, "seed": 7}, SUITE, False),
    ("spec.suite", "spec.suite.preset, seed", {**SUITE, "limit": 10}, SUITE, False),
    ("spec.suite", "spec.suite.preset, seed", {**SUITE, "fewshotSampling": "fixed"}, SUITE, False),
    (
        "spec.suite",
        "spec.suite.preset, seed",
        {"preset": "gauntlet-v0.2"},
        {"preset": "gauntlet-v0.1"},
        False,
    ),
    ("spec.suite", "spec.suite.shots may only grow", {**SUITE, "shots": [0, 1, 3]}, SUITE, True),
    ("spec.suite", "spec.suite.shots may only grow", {**SUITE, "shots": [0]}, SUITE, False),
    ("spec.suite", "spec.suite.benchmarks may only grow", SUITE3, SUITE, True),
    ("spec.suite", "spec.suite.benchmarks may only grow", SUITE, SUITE3, False),
    (
        "spec.suite.benchmarks[]",
        "a listed benchmark's shots",
        {"name": "copa", "shots": [0, 3]},
        {"name": "copa", "shots": [0]},
        True,
    ),
    (
        "spec.suite.benchmarks[]",
        "a listed benchmark's shots",
        {"name": "copa", "shots": [3]},
        {"name": "copa", "shots": [0]},
        False,
    ),
    (
        "spec.suite.benchmarks[]",
        "a listed benchmark's shots",
        {"name": "copa", "shots": [0]},
        {"name": "copa"},
        False,
    ),
    ("spec.suite.benchmarks[]", "a listed benchmark's shots", {"name": "copa"}, {"name": "copa"}, True),
    (
        "spec.evaluator",
        "spec.evaluator.dtype and maxLength",
        {"dtype": "auto", "image": "e:2"},
        {"dtype": "auto"},
        True,
    ),
    ("spec.evaluator", "spec.evaluator.dtype and maxLength", {"dtype": "float32"}, {"dtype": "auto"}, False),
    ("spec.evaluator", "spec.evaluator.dtype and maxLength", {"maxLength": 512}, {}, False),
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
    ("spec.evaluator.tolerations[]", "a toleration with operator Exists", EXISTS, None, True),
    (
        "spec.evaluator.tolerations[]",
        "a toleration with operator Exists",
        {**EXISTS, "value": ""},
        None,
        True,
    ),
    (
        "spec.evaluator.tolerations[]",
        "a toleration with operator Exists",
        {"key": "g", "value": "x"},
        None,
        True,
    ),
    (
        "spec.evaluator.tolerations[]",
        "a toleration with operator Exists",
        {**EXISTS, "value": "x"},
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


def _schemas() -> dict[str, dict]:
    return dict(_walk(api.openapi_schema()))


def canonical(value, node: dict):
    """``value`` with map and set lists sorted (their equality ignores order on a real server)."""
    if isinstance(value, dict):
        props = node.get("properties") or {}
        return {k: canonical(v, props.get(k) or {}) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v, node.get("items") or {}) for v in value]
        kind = node.get("x-kubernetes-list-type")
        if kind == "map":
            keys = node["x-kubernetes-list-map-keys"]
            return sorted(items, key=lambda v: [str(v.get(k)) for k in keys])
        if kind == "set":
            return sorted(items, key=repr)
        return items
    return value


def _evaluate(rule: str, value, old, node: dict) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    activation = {"self": celpy.json_to_cel(canonical(value, node))}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(canonical(old, node))
    return bool(program.evaluate(activation))


@pytest.mark.parametrize(("path", "message", "value", "old", "expected"), CASES)
def test_cel_rule(path, message, value, old, expected):
    matches = [rule for (p, m), rule in _rules().items() if p == path and m.startswith(message)]
    assert len(matches) == 1, f"no single rule at {path!r} with message {message!r}"
    assert _evaluate(matches[0], value, old, _schemas()[path]) is expected


def test_plain_list_equality_would_call_a_reorder_a_change():
    """The canonical order is what makes the reorder case pass (not a rule that cannot fail)."""
    rule = next(r for (p, m), r in _rules().items() if p == "spec" and m.startswith("spec.suite can grow"))
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    reordered = {
        "self": celpy.json_to_cel({**LISTED, "suite": SUITE2}),
        "oldSelf": celpy.json_to_cel(LISTED),
    }
    assert bool(program.evaluate(reordered)) is False


def test_duplicate_checkpoint_names_are_refused_by_the_list_map_key():
    """The unique-names rule was dropped: the list-map key already refuses duplicates."""
    from benchcal.errors import BadInput
    from benchcal.spec import parse_run

    body = {
        "apiVersion": "benchcal.dev/v1alpha1",
        "kind": "CalibrationRun",
        "metadata": {"name": "dup", "namespace": "ml"},
        "spec": {**SPEC, "checkpoints": [CKPT, {**CKPT, "flops": 2.0}, CKPT3]},
    }
    with pytest.raises(BadInput, match=r"spec.checkpoints\[1\].name: 's1' is already used"):
        parse_run(body)


def test_every_rule_has_a_passing_and_a_failing_case():
    for path, message in _rules():
        outcomes = {expected for p, m, _, _, expected in CASES if p == path and message.startswith(m)}
        assert outcomes == {True, False}, f"{path!r} {message!r}: add cases that pass and fail"
