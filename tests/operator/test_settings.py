"""Operator settings from env (contract 8) and the `benchcal operator` flags -> kopf.run options."""

from __future__ import annotations

import argparse

import pytest

from benchcal.errors import BadInput
from benchcal_operator import cli
from benchcal_operator.settings import Settings, from_env


def test_defaults():
    s = from_env({})
    assert s == Settings()
    assert s.metrics_port == 8080 and s.namespaces == ()
    assert s.job_pod_security_context == {
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch",
    }


def test_values_from_env():
    s = from_env(
        {
            "BENCHCAL_NAMESPACES": "ml, research ,",
            "BENCHCAL_EVALUATOR_IMAGE": "e:1",
            "BENCHCAL_REDUCER_IMAGE": "r:1",
            "BENCHCAL_MAX_RUNNING_CHECKPOINTS": "4",
            "BENCHCAL_ALLOW_TRUST_REMOTE_CODE": "true",
            "BENCHCAL_JOB_POD_SECURITY_CONTEXT": '{"fsGroup": 1000, "runAsUser": null}',
            "BENCHCAL_METRICS_PORT": "9090",
        }
    )
    assert s.namespaces == ("ml", "research")
    assert (s.evaluator_image, s.reducer_image, s.max_running_checkpoints) == ("e:1", "r:1", 4)
    assert s.allow_trust_remote_code is True and s.metrics_port == 9090
    assert s.job_pod_security_context == {"fsGroup": 1000}  # null unsets (OpenShift)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BENCHCAL_MAX_RUNNING_CHECKPOINTS", "many"),
        ("BENCHCAL_MAX_RUNNING_CHECKPOINTS", "-1"),
        ("BENCHCAL_ALLOW_TRUST_REMOTE_CODE", "maybe"),
        ("BENCHCAL_JOB_POD_SECURITY_CONTEXT", "{not json"),
        ("BENCHCAL_JOB_POD_SECURITY_CONTEXT", '{"privileged": true}'),
        ("BENCHCAL_JOB_POD_SECURITY_CONTEXT", '{"runAsUser": 0}'),
    ],
)
def test_bad_values_name_the_variable(key, value):
    with pytest.raises(BadInput, match=key):
        from_env({key: value})


def test_cli_namespaces_flags_win_over_env():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--standalone", "-n", "a", "--namespace", "b", "--liveness", "http://0.0.0.0:8081/healthz"]
    )
    opts = cli.kopf_options(args, Settings(namespaces=("env",)))
    assert opts == {
        "standalone": True,
        "liveness_endpoint": "http://0.0.0.0:8081/healthz",
        "clusterwide": False,
        "namespaces": ("a", "b"),
    }
    opts = cli.kopf_options(parser.parse_args([]), Settings())
    assert opts["clusterwide"] is True and opts["namespaces"] == () and opts["standalone"] is None
    assert cli.kopf_options(parser.parse_args([]), Settings(namespaces=("env",)))["namespaces"] == ("env",)
