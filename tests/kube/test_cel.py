"""The CEL validator as a pure function: correlation, transition rules, list semantics, messages."""

from __future__ import annotations

import pytest

pytest.importorskip("celpy")

from tests.kube.apiserver import cel

ITEMS = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "size": {"type": "number"}},
        "x-kubernetes-validations": [{"rule": "self.size >= oldSelf.size", "message": "size may only grow"}],
    },
}
SCHEMA = {
    "type": "object",
    "properties": {
        "items": ITEMS,
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "frozen": {"type": "array", "items": {"type": "string"}},
    },
    "x-kubernetes-validations": [
        {"rule": "self.items == oldSelf.items", "message": "items are immutable"},
        {
            "rule": "self.tags == oldSelf.tags",
            "messageExpression": "'tags changed to ' + string(size(self.tags))",
        },
        {
            "rule": "self.frozen == oldSelf.frozen",
            "fieldPath": ".frozen",
            "reason": "FieldValueForbidden",
            "message": "frozen",
        },
    ],
}
OLD = {
    "items": [{"name": "a", "size": 1}, {"name": "b", "size": 2}],
    "tags": ["x", "y"],
    "frozen": ["p", "q"],
}


def test_transition_rules_do_not_run_on_create() -> None:
    assert cel.validate(SCHEMA, {**OLD, "items": [{"name": "a", "size": 0}]}) == []


def test_map_and_set_lists_compare_without_order_atomic_lists_with_order() -> None:
    same = {"items": list(reversed(OLD["items"])), "tags": ["y", "x"], "frozen": ["p", "q"]}
    assert cel.validate(SCHEMA, same, OLD) == []
    assert cel.validate(SCHEMA, {**same, "frozen": ["q", "p"]}, OLD) == [("frozen", "Forbidden: frozen")]


def test_map_items_correlate_by_key_and_numbers_are_doubles() -> None:
    grown = {**OLD, "items": [{"name": "b", "size": 1}, {"name": "a", "size": 1}]}  # b shrank 2 -> 1
    errors = cel.validate(SCHEMA, grown, OLD)
    assert ("items[0]", 'Invalid value: "object": size may only grow') in errors
    assert ("<nil>", 'Invalid value: "object": items are immutable') in errors
    # an integer in a number field compares with a double in CEL; a new key has no old value
    assert (
        cel.validate(
            ITEMS, [{"name": "a", "size": 1}, {"name": "c", "size": 5}], [{"name": "a", "size": 1.0}]
        )
        == []
    )


def test_message_expression_and_unchanged_subtrees() -> None:
    errors = cel.validate(SCHEMA, {**OLD, "tags": ["x"]}, OLD)
    assert errors == [("<nil>", 'Invalid value: "object": tags changed to 1')]
    assert cel.validate(SCHEMA, OLD, OLD) == []  # ratcheting: nothing changed, nothing re-checked


def test_syntax_errors_are_reported_with_their_path() -> None:
    bad = {
        "type": "object",
        "properties": {"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self =="}]}},
    }
    ((path, message),) = cel.rule_errors(bad, "spec")
    assert path == "spec.properties[a].x-kubernetes-validations[0].rule" and "compilation failed" in message
