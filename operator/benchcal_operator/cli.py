"""``benchcal operator``: run the controller (equivalent to ``kopf run -m benchcal_operator.handlers``)."""

from __future__ import annotations

import argparse
import importlib
import logging

from benchcal_operator import settings as settings_mod


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: for exactly one replica (Deployment strategy Recreate)",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable); default BENCHCAL_NAMESPACES, or all namespaces when empty",
    )
    parser.add_argument(
        "--liveness", metavar="URL", help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz"
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "full", "plain"),
        default="json",
        help="json (default): one JSON object per line, with the CalibrationRun under 'object'",
    )


def kopf_options(args: argparse.Namespace, settings: settings_mod.Settings) -> dict:
    """Keyword arguments for kopf.run: namespaces from flags, else env, else cluster-wide."""
    namespaces = tuple(args.namespace) or settings.namespaces
    return {
        "standalone": bool(args.standalone) or None,
        "liveness_endpoint": args.liveness,
        "clusterwide": not namespaces,
        "namespaces": namespaces,
    }


def run(args: argparse.Namespace) -> int:
    import kopf

    settings = settings_mod.from_env()  # fail fast (exit 2) on a malformed BENCHCAL_* variable
    # kopf's own logging setup replaces the plain root handler benchcal.app.cli installed
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    kopf.configure(
        verbose=bool(getattr(args, "verbose", False)),
        log_format=kopf.LogFormat[args.log_format.upper()],
        log_refkey="object",
    )
    importlib.import_module("benchcal_operator.handlers")  # registers the handlers
    kopf.run(**kopf_options(args, settings))
    return 0
