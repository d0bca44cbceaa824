"""The one console script, ``benchcal`` (also ``python -m benchcal``).

Each subcommand lives in the component that owns it and is imported only when used, so
``benchcal reduce`` never imports torch and ``benchcal operator`` never imports transformers.
A subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``; exceptions
become the exit codes of ``benchcal.errors``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from benchcal import __version__
from benchcal.errors import EXIT_BAD_INPUT, EXIT_CRASH, EXIT_INTERRUPTED, BadInput

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "benchcal.app.local_run",
        "run a CalibrationRun YAML locally: evaluate every checkpoint, then reduce",
    ),
    "evaluate": ("benchcal_eval.cli", "evaluate one checkpoint on benchmarks x shot counts"),
    "reduce": ("benchcal_reduce.cli", "classify benchmarks from a results table or directory"),
    "tasks": ("benchcal.tasks.cli", "list the benchmark registry"),
    "operator": ("benchcal_operator.cli", "run the Kubernetes operator (kopf)"),
    "plan": ("benchcal.app.plan", "print the Kubernetes objects the operator would create for a run"),
    "publish": (
        "benchcal.app.publisher",
        "publisher sidecar: publish the evaluator's summary from its outbox to a ConfigMap",
    ),
}


def _load(name: str):
    module_name = SUBCOMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:  # an extra is not installed
        extra = {
            "evaluate": "evaluator",
            "reduce": "reducer",
            "operator": "operator",
            "plan": "operator",
            "publish": "publish",
        }.get(name, "all")
        raise SystemExit(
            f"benchcal {name}: missing dependency ({exc.name or exc}). Install it with: pip install 'benchcal[{extra}]'"
        ) from exc


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchcal", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"benchcal {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Only the chosen subcommand's module is imported (the others may lack their extras).
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(_load(args.command).run(args) or 0)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception:
        logging.getLogger("benchcal").exception("unexpected failure")
        return EXIT_CRASH
