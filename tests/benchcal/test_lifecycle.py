"""benchcal.lifecycle: the phases and condition types the operator writes are the CRD's."""

from __future__ import annotations

from benchcal import lifecycle
from benchcal.api import crd, openapi_schema


def _status() -> dict:
    return openapi_schema()["properties"]["status"]["properties"]


def test_run_and_job_phases_are_the_crds_enums():
    status = _status()
    assert list(status["phase"]["enum"]) == list(lifecycle.RUN_PHASES)
    assert list(status["checkpoints"]["items"]["properties"]["phase"]["enum"]) == list(lifecycle.JOB_PHASES)
    assert list(status["reducer"]["properties"]["phase"]["enum"]) == list(lifecycle.JOB_PHASES)
    assert set(lifecycle.ACTIVE) | set(lifecycle.FINISHED) < set(lifecycle.JOB_PHASES)
    assert set(lifecycle.TERMINAL) < set(lifecycle.RUN_PHASES)


def test_condition_types_are_the_ones_the_crd_documents():
    description = _status()["conditions"]["description"]
    assert all(kind in description for kind in lifecycle.CONDITION_TYPES)
    (version,) = crd()["spec"]["versions"]
    message_column = next(c for c in version["additionalPrinterColumns"] if c["name"] == "Message")
    assert f'@.type=="{lifecycle.CONDITION_READY}"' in message_column["jsonPath"]
