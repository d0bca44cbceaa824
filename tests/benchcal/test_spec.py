"""benchcal.spec: the CRD schema applied locally, semantic checks, errors naming the field."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from benchcal.api import MAX_LISTED_PROBLEMS, to_json_schema
from benchcal.errors import BadInput
from benchcal.spec import load_run, parse_run

BASE = {
    "apiVersion": "benchcal.dev/v1alpha1",
    "kind": "CalibrationRun",
    "metadata": {"name": "tiny-demo", "namespace": "ml"},
    "spec": {
        "checkpoints": [
            {"name": "s1", "model": {"builtin": "tiny-series/s1"}, "flops": 1.2e15},
            {"name": "s2", "model": {"path": "/models/s2"}, "flops": 4.8e15},
            {
                "name": "s3",
                "model": {"pvc": {"claimName": "ckpts", "path": "s3"}},
                "params": 1e8,
                "tokens": 2e10,
            },
        ],
        "suite": {"benchmarks": [{"name": "arc_easy", "shots": [0, 3]}, {"name": "jeopardy"}], "limit": 50},
    },
}


def doc_with(path: str, value, base=BASE) -> dict:
    """Copy of BASE with one field set (value=DELETE removes it); path like spec.checkpoints.0.flops."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return doc


DELETE = object()


def test_valid_run_resolves_sources_flops_and_defaults():
    run = parse_run(BASE)
    assert run.name == "tiny-demo" and run.namespace == "ml"
    assert [c.name for c in run.checkpoints] == ["s1", "s2", "s3"]
    assert run.checkpoints[2].flops == pytest.approx(6 * 1e8 * 2e10)
    assert [c.model.kind for c in run.checkpoints] == ["builtin", "path", "pvc"]
    assert run.checkpoints[2].model.claim_name == "ckpts"
    assert run.suite.shots == (0, 1, 3, 5, 10)  # CRD default
    assert [(b.name, b.shots) for b in run.suite.benchmarks] == [
        ("arc_easy", (0, 3)),
        ("jeopardy", (0, 1, 3, 5, 10)),
    ]
    assert run.suite.seed == 1234 and run.suite.limit == 50
    assert run.suite.fewshot_sampling == "nested"  # CRD default
    assert run.evaluator.backoff_limit == 1 and run.evaluator.shards == 1  # CRD defaults
    assert run.evaluator.dtype == "auto" and run.evaluator.trust_remote_code is False
    assert run.evaluator.max_length is None and run.evaluator.image is None and run.evaluator.pod == {}
    assert run.classification.alpha == 0.05 and run.classification.strict is False
    assert run.results is None and run.suspend is False and run.queue_name == ""


def test_preset_expands_through_the_registry():
    doc = doc_with("spec.suite", {"preset": "gauntlet-v0.1", "shots": [0, 5]})
    run = parse_run(doc)
    names = [b.name for b in run.suite.benchmarks]
    assert "arc_easy" in names and len(names) > 10
    assert all(b.shots == (0, 5) for b in run.suite.benchmarks)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.checkpoints.0.flops", -1.0, "spec.checkpoints[0].flops"),
        ("spec.checkpoints.0.flops", DELETE, "spec.checkpoints[0]: missing flops"),
        ("spec.checkpoints.2.tokens", DELETE, "spec.checkpoints[2]: missing tokens"),
        ("spec.checkpoints.0.params", 1e9, "spec.checkpoints[0]: set either flops, or params and tokens"),
        (
            "spec.checkpoints.1.model",
            {"path": "/a", "uri": "s3://b"},
            "spec.checkpoints[1].model: set exactly one",
        ),
        ("spec.checkpoints.1.model", {}, "spec.checkpoints[1].model: set exactly one"),
        (
            "spec.checkpoints.1.name",
            "s1",
            "spec.checkpoints[1].name: 's1' is already used by spec.checkpoints[0]",
        ),
        ("spec.checkpoints.1.name", "Bad_Name", "spec.checkpoints[1].name"),
        ("spec.checkpoints", [BASE["spec"]["checkpoints"][0]], "spec.checkpoints"),
        ("spec.checkpoints.0.flopz", 3, "spec.checkpoints[0].flopz: unknown field; did you mean 'flops'?"),
        ("spec.suite.shots", [0, 33], "spec.suite.shots[1]"),
        ("spec.suite.benchmarks.0.shots", [-1], "spec.suite.benchmarks[0].shots[0]"),
        ("spec.suite.preset", "gauntlet-v0.1", "spec.suite: set exactly one of suite.preset"),
        ("spec.suite.benchmarks", [], "spec.suite: set exactly one of suite.preset"),
        ("spec.suite.benchmarks.1.name", "arc_eazy", "spec.suite.benchmarks[1].name:"),
        ("spec.suite.fewshotSampling", "random", "spec.suite.fewshotSampling"),
        ("spec.checkpoints.2.model.pvc.path", "../etc", "spec.checkpoints[2].model.pvc.path"),
        ("spec.evaluator", {"env": [{"name": "HF_HUB_OFFLINE", "value": "0"}]}, "spec.evaluator.env[0].name"),
        (
            "spec.evaluator",
            {"volumeMounts": [{"name": "data", "mountPath": "/d"}]},
            "spec.evaluator.volumeMounts[0].name",
        ),
        (
            "spec.evaluator",
            {"volumes": [{"name": "benchcal-x", "emptyDir": {}}]},
            "spec.evaluator.volumes[0].name",
        ),
        ("spec.evaluator", {"shards": 0}, "spec.evaluator.shards"),
        ("spec.results", {"path": "/r", "uri": "s3://x"}, "spec.results: set exactly one"),
        ("metadata.name", "Tiny_Demo", "metadata.name"),
        ("kind", "Job", "apiVersion/kind"),
    ],
)
def test_errors_name_the_field(path, value, expected):
    with pytest.raises(BadInput) as err:
        parse_run(doc_with(path, value))
    assert expected in str(err.value)


def test_two_checkpoints_are_refused_before_anything_runs():
    two = BASE["spec"]["checkpoints"][:2]
    with pytest.raises(BadInput) as err:
        parse_run(doc_with("spec.checkpoints", two))
    assert str(err.value) == "spec.checkpoints: 2 item(s), fewer than the 3 required"


def test_three_checkpoints_with_two_equal_flops_name_the_collision():
    # s3's 6 * params * tokens = 1.2e15 = s1's flops: pooled by the reducer, so only two points
    doc = doc_with("spec.checkpoints.2.tokens", 1.2e15 / 6 / 1e8)
    assert 6.0 * 1e8 * doc["spec"]["checkpoints"][2]["tokens"] == 1.2e15
    with pytest.raises(BadInput) as err:
        parse_run(doc)
    assert str(err.value) == (
        "spec.checkpoints: 3 checkpoint(s) with only 2 distinct flops value(s); at least 3 different "
        "training FLOPs are needed to test monotonicity (checkpoints with equal FLOPs are pooled): "
        "spec.checkpoints[0] (s1) and spec.checkpoints[2] (s3, 6 * params * tokens) share flops 1.2e+15"
    )


def test_equal_flops_are_fine_once_three_values_are_distinct():
    doc = doc_with("spec.checkpoints.1.flops", 1.2e15)  # s1 and s2 pooled, s3 still distinct ...
    with pytest.raises(BadInput, match=r"s1\) and spec.checkpoints\[1\] \(s2\) share flops 1.2e\+15:?"):
        parse_run(doc)
    more = {"name": "s4", "model": {"builtin": "tiny-series/s4"}, "flops": 9e19}
    doc["spec"]["checkpoints"].append(more)  # ... and a fourth makes three distinct values
    assert [c.flops for c in parse_run(doc).checkpoints] == [1.2e15, 1.2e15, 1.2e19, 9e19]


def test_unknown_benchmark_suggests_the_close_name():
    with pytest.raises(BadInput, match="arc_easy"):
        parse_run(doc_with("spec.suite.benchmarks.1.name", "arc_eazy"))


def test_load_run_reads_exponent_floats_and_resolves_relative_paths(tmp_path):
    text = yaml.safe_dump(doc_with("spec.results", {"path": "out"})).replace("1200000000000000.0", "1.2e15")
    assert "1.2e15" in text  # PyYAML would read this as a string; Kubernetes reads a number
    path = tmp_path / "run.yaml"
    path.write_text(text)
    run = load_run(path)
    assert run.checkpoints[0].flops == 1.2e15
    assert run.results.path == str(tmp_path / "out")


def test_load_run_reports_the_yaml_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("spec:\n  checkpoints: [\n")
    with pytest.raises(BadInput, match=r"run.yaml:\d+: invalid YAML"):
        load_run(path)


def _problems(message: str) -> list[str]:
    """The numbered lines of a several-problem message, without their numbers (checked in order)."""
    lines = message.splitlines()[1:]
    assert [line.split(".", 1)[0].strip() for line in lines] == [str(i) for i in range(1, len(lines) + 1)]
    return [line.split(". ", 1)[1] for line in lines]


def test_a_typo_is_reported_first_by_its_path_with_a_did_you_mean():
    doc = copy.deepcopy(BASE)
    doc["spec"]["suiet"] = doc["spec"].pop("suite")
    with pytest.raises(BadInput) as err:
        parse_run(doc)
    assert str(err.value).startswith("2 problems in the CalibrationRun:\n")
    assert _problems(str(err.value)) == [
        "spec.suiet: unknown field; did you mean 'suite'?",
        "spec: 'suite' is a required property",  # caused by the typo, so after it
    ]


def test_every_problem_at_every_depth_unknown_fields_first_then_in_document_order(tmp_path):
    doc = copy.deepcopy(BASE)
    doc["spec"]["checkpoints"][0]["flops"] = "a lot"  # wrong type
    ckpt = doc["spec"]["checkpoints"][1]
    ckpt["flop"] = ckpt.pop("flops")
    doc["spec"]["suiet"] = doc["spec"].pop("suite")
    doc["spec"]["evaluator"] = {"dtpye": "bf16", "shards": "two", "colour": "blue"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(BadInput) as err:
        load_run(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 7 problems in the CalibrationRun:\n")
    assert _problems(message) == [
        "spec.checkpoints[1].flop: unknown field; did you mean 'flops'?",
        "spec.suiet: unknown field; did you mean 'suite'?",
        "spec.evaluator.dtpye: unknown field; did you mean 'dtype'?",
        "spec.evaluator.colour: unknown field; allowed here: activeDeadlineSeconds, affinity, backoffLimit, "
        "dtype, env, image, imagePullSecrets, maxLength, nodeSelector, podSecurityContext, "
        "priorityClassName, resources, runtimeClassName, scratchSize, serviceAccountName, shards, "
        "tokenBudget, tolerations, trustRemoteCode, volumeMounts, volumes "
        "(`kubectl explain calibrationrun.spec.evaluator`)",
        "spec: 'suite' is a required property",
        "spec.checkpoints[0].flops: 'a lot' is not of type 'number'",
        "spec.evaluator.shards: 'two' is not of type 'integer'",
    ]


def test_the_list_is_bounded_and_says_how_many_were_left_out():
    doc = copy.deepcopy(BASE)
    doc["spec"]["checkpoints"][0].update({f"extra{i}": i for i in range(MAX_LISTED_PROBLEMS + 5)})
    with pytest.raises(BadInput) as err:
        parse_run(doc)
    message = str(err.value)
    assert message.startswith(f"{MAX_LISTED_PROBLEMS + 5} problems in the CalibrationRun:\n")
    assert message.endswith("\n  ... and 5 more")
    assert len(message.splitlines()) == MAX_LISTED_PROBLEMS + 2
    assert (
        "spec.checkpoints[0].extra0: unknown field; allowed here: flops, model, name, params, tokens"
        in message
    )


def test_json_schema_conversion_handles_kubernetes_extensions():
    node = {
        "type": "object",
        "properties": {
            "q": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "free": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"a": {"type": "string"}},
            },
        },
    }
    out = to_json_schema(node)
    assert out["additionalProperties"] is False
    assert out["properties"]["q"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in out["properties"]["free"]


def test_the_typed_evaluator_section_covers_every_crd_property_once():
    from benchcal.api import openapi_schema
    from benchcal.spec import APPENDED_FIELDS, EVALUATOR_FIELDS, POD_FIELDS, EvaluatorSettings

    props = openapi_schema()["properties"]["spec"]["properties"]["evaluator"]["properties"]
    named = [*EVALUATOR_FIELDS, *POD_FIELDS, *APPENDED_FIELDS]
    assert sorted(named) == sorted(props) and len(set(named)) == len(named)
    fields = [f.name for f in dataclasses.fields(EvaluatorSettings)]
    assert sorted(fields) == sorted([*EVALUATOR_FIELDS.values(), "pod"])
    # no defaults of its own: every default comes from the CRD
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(EvaluatorSettings))


def test_evaluator_settings_are_typed_and_pass_kubernetes_fields_through():
    ev = {
        "dtype": "bfloat16", "maxLength": 2048, "tokenBudget": 8192, "trustRemoteCode": True,
        "shards": 2, "backoffLimit": 3, "activeDeadlineSeconds": 600, "image": "e:1",
        "serviceAccountName": "sa", "resources": {"limits": {"nvidia.com/gpu": 1}},
        "nodeSelector": {"gpu": "h100"}, "env": [{"name": "X", "value": "1"}],
        "volumes": [{"name": "data", "emptyDir": {}}], "volumeMounts": [{"name": "data", "mountPath": "/d"}],
    }  # fmt: skip
    run = parse_run(doc_with("spec.evaluator", ev))
    got = run.evaluator
    assert (got.dtype, got.max_length, got.token_budget, got.trust_remote_code) == (
        "bfloat16",
        2048,
        8192,
        True,
    )
    assert (got.shards, got.backoff_limit, got.active_deadline_seconds) == (2, 3, 600)
    assert (got.image, got.service_account_name) == ("e:1", "sa")
    assert got.resources == {"limits": {"nvidia.com/gpu": 1}}
    assert got.pod == {k: ev[k] for k in ("nodeSelector", "env", "volumes", "volumeMounts")}


@pytest.mark.parametrize("mode", ["nested", "independent", "fixed"])
def test_fewshot_sampling_is_read_from_the_suite(mode):
    assert parse_run(doc_with("spec.suite.fewshotSampling", mode)).suite.fewshot_sampling == mode
