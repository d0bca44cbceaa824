"""``benchcal plan RUN.yaml [-o yaml|json]``: the Kubernetes objects the operator would create.

The same validation (``benchcal.spec.parse_run``: the CRD schema, the checks the API server
would make) and the same pure builders the operator uses (``benchcal_operator.identity``,
``benchcal_operator.jobs``), with the operator's settings from the same ``BENCHCAL_*`` variables the chart sets,
so a user can review resources, node selection, volumes and security context before
``kubectl apply``, and GitOps users can diff it. Nothing is sent to a cluster. The run's UID is
not known before it exists: owner references carry ``PLAN_UID`` unless ``metadata.uid`` is set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from benchcal.errors import BadInput
from benchcal.spec import CalibrationRun, parse_run, read_yaml_file

PLAN_UID = "00000000-0000-0000-0000-000000000000"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_file", metavar="RUN.yaml", type=Path, help="a CalibrationRun manifest")
    parser.add_argument(
        "-o", "--output", choices=("yaml", "json"), default="yaml", help="yaml (default) or json"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        help="the namespace it will be applied in (default metadata.namespace, else default)",
    )


def _load(path: Path, namespace: str | None) -> dict[str, Any]:
    doc = read_yaml_file(path)
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: expected one CalibrationRun document")
    meta = doc.setdefault("metadata", {})
    if namespace:
        meta["namespace"] = namespace
    meta.setdefault("namespace", "default")
    meta.setdefault("uid", PLAN_UID)
    return doc


def plan_objects(run: CalibrationRun, settings: Any) -> list[dict[str, Any]]:
    """What the operator creates for ``run`` over its life, in order: the run's own ServiceAccount,
    Role, RoleBinding and summary ConfigMaps, the evaluator Jobs, the reducer Job last."""
    from benchcal_operator import identity, jobs, planner

    refusal = planner.rejection(run, settings)
    if refusal:
        raise BadInput(refusal)
    objects = identity.identity_objects(run)
    for ckpt in run.checkpoints:
        objects.append(jobs.build_evaluator_job(run, ckpt, settings))
    objects.append(jobs.build_reducer_job(run, settings))
    return objects


def render(objects: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    return yaml.safe_dump_all(objects, sort_keys=False)


def run(args: argparse.Namespace) -> int:
    from benchcal_operator.settings import from_env

    doc = _load(args.run_file, args.namespace)
    try:
        calibration = parse_run(doc)
    except BadInput as exc:
        raise BadInput(f"{args.run_file}: {exc}") from None
    sys.stdout.write(render(plan_objects(calibration, from_env()), args.output))
    return 0
