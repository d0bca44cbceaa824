"""``benchcal reduce``: classify benchmarks from a results table, evaluator dirs, or ConfigMaps.

Every reduction also extends the run's verdict history (``benchcal.history``): read from the
run's ``status.history`` with ``--write-status`` (and written back with the classification), or
from ``--history FILE`` (``benchcal run``: ``<results>/history.json``); without either, the report
shows this reduction alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchcal import history, storage
from benchcal.classification import StatusClassification
from benchcal.errors import BadInput
from benchcal.results import CheckpointSummary, atomic_write_text
from benchcal_reduce.bootstrap import DEFAULT_DRAWS
from benchcal_reduce.labels import confidence_label, group_label
from benchcal_reduce.reduce import (
    DEFAULT_MIN_GAIN,
    DEFAULT_MIN_MARGIN,
    ReduceOptions,
    Reduction,
    reduce_table,
)
from benchcal_reduce.report import results_ref, status_summary, write_outputs
from benchcal_reduce.table import load_inputs, table_from_summaries

log = logging.getLogger("benchcal.reduce")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        nargs="*",
        metavar="INPUT",
        help="long-format CSV/Parquet table, or a directory of `benchcal evaluate` outputs, "
        "or several checkpoint output directories (reduced together, nothing else)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--strict", action="store_true", help="the study's check: every step up, no noise tolerance"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of every test (default 0.05)"
    )
    parser.add_argument(
        "--correction",
        choices=("bh", "holm"),
        default="bh",
        help="multiple-testing correction of the above-chance tests over the table (default bh)",
    )
    parser.add_argument(
        "--min-margin",
        type=float,
        default=DEFAULT_MIN_MARGIN,
        help="above chance = beyond the floor by this much, rescaled (acc-floor)/(1-floor) (default 0.02)",
    )
    parser.add_argument(
        "--min-gain",
        type=float,
        default=DEFAULT_MIN_GAIN,
        help="flat = rising less than this (rescaled) per decade of FLOPs (default 0.02)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_DRAWS,
        metavar="DRAWS",
        help=f"redraws for the confidence of each verdict; 0 = off (default {DEFAULT_DRAWS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--from-configmaps",
        metavar="NAMESPACE/RUN",
        help="read the checkpoint summaries the evaluator Jobs published for a CalibrationRun",
    )
    parser.add_argument(
        "--checkpoints",
        metavar="NAMES",
        help="with --from-configmaps: reduce exactly these checkpoints (comma-separated); a listed one "
        "without a summary is an error, other summaries are left out (a run's removed checkpoints)",
    )
    parser.add_argument(
        "--write-status",
        metavar="NAMESPACE/RUN",
        help="write the classification into the CalibrationRun's status (and extend status.history)",
    )
    parser.add_argument(
        "--generation",
        type=int,
        metavar="G",
        help="the run's metadata.generation this reduction is for (its history entry); default: the "
        "history's last generation, + 1 when the inputs changed",
    )
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="a local verdict history (JSON): read, extended by this reduction, written back",
    )


def print_classification(reduction: Reduction) -> None:
    """One line per benchmark on stdout: name, group, confidence, recommended shots, reason."""
    cls = reduction.classification
    width = max(9, *(len(b) for b in cls["benchmark"]))
    print(f"{'benchmark':<{width}}  {'group':<22} {'confidence':<17} shots  reason")
    for r in cls.to_dict("records"):
        shots = "-" if pd.isna(r["recommended_shots"]) else str(r["recommended_shots"])
        print(
            f"{r['benchmark']:<{width}}  {group_label(r):<22} {confidence_label(r):<17} {shots:>5}  {r['reason']}"
        )


def only_checkpoints(summaries: list[CheckpointSummary], names: str, where: str) -> list[CheckpointSummary]:
    """The summaries of exactly ``names`` (comma-separated); a name without one is an error."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    have = {s.checkpoint for s in summaries}
    missing = [n for n in wanted if n not in have]
    if missing:
        raise BadInput(
            f"{where}: no published summary for checkpoint(s) {', '.join(missing)} (--checkpoints)"
        )
    return [s for s in summaries if s.checkpoint in set(wanted)]


def _read_history_file(path: Path) -> tuple[history.HistoryEntry, ...]:
    if not path.exists():
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"--history {path}: cannot read: {exc.strerror}") from None
    return history.parse_file(text, f"--history {path}")


def history_entry(
    reduction: Reduction,
    classification: StatusClassification,
    previous: tuple[history.HistoryEntry, ...],
    generation: int | None,
) -> history.HistoryEntry:
    """This reduction's history entry: its checkpoints (FLOPs order) and (benchmark, shots) pairs."""
    checkpoints = [str(c) for c in reduction.checkpoints["checkpoint"]]
    pairs = {
        (str(b), int(k)) for b, k in reduction.table[["benchmark", "num_fewshot"]].itertuples(index=False)
    }
    if generation is None:
        generation = history.next_generation(previous, history.inputs_digest(checkpoints, pairs))
    return history.make_entry(classification, generation=generation, checkpoints=checkpoints, pairs=pairs)


def run(args: argparse.Namespace) -> int:
    if bool(args.input) == bool(args.from_configmaps):
        raise BadInput("give exactly one of INPUT or --from-configmaps NAMESPACE/RUN")
    if args.history and args.write_status:
        raise BadInput("give at most one of --history FILE and --write-status (the run's status.history)")
    if args.generation is not None and args.generation < 0:
        raise BadInput(f"--generation must be >= 0, got {args.generation}")
    history_path = Path(args.history) if args.history else None
    previous: tuple[history.HistoryEntry, ...] = ()
    if history_path is not None:
        previous = _read_history_file(history_path)  # before any work: a damaged file fails fast
    storage.check_driver(args.out, "--out")  # an object-store URL: its driver, before any work
    if args.from_configmaps:
        from benchcal.publish import collect_summaries  # kubernetes client only when used

        summaries = collect_summaries(args.from_configmaps)
        if args.checkpoints is not None:
            summaries = only_checkpoints(
                summaries, args.checkpoints, f"--from-configmaps {args.from_configmaps}"
            )
        table = table_from_summaries(summaries, f"configmaps {args.from_configmaps}")
    elif args.checkpoints is not None:
        raise BadInput(
            "--checkpoints selects among --from-configmaps summaries; with INPUT, list the directories"
        )
    else:
        table = load_inputs(args.input)
    options = ReduceOptions(
        alpha=args.alpha,
        strict=args.strict,
        correction=args.correction,
        min_margin=args.min_margin,
        min_gain=args.min_gain,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    reduction = reduce_table(table, options)
    if args.write_status:
        from benchcal.publish import read_run_history

        previous = read_run_history(args.write_status)
    classification = status_summary(reduction)
    entry = history_entry(reduction, classification, previous, args.generation)
    extended = history.extend(previous, entry)
    if storage.is_url(args.out):
        # written locally, then each file uploaded whole (benchcal.storage): no torn report
        with tempfile.TemporaryDirectory(prefix="benchcal-report-") as tmp:
            paths = write_outputs(reduction, tmp, figures=not args.no_figures, history=extended)
            ref = {**results_ref(paths["report.md"]), "uri": str(storage.join(args.out, "report.md"))}
            storage.upload_tree(Path(tmp), args.out)
    else:
        paths = write_outputs(reduction, args.out, figures=not args.no_figures, history=extended)
        ref = results_ref(paths["report.md"])
    print_classification(reduction)
    print(f"wrote {len(paths)} files to {args.out}", file=sys.stderr)
    if history_path is not None:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(history_path, history.file_text(extended))
    at = extended.index(entry) if entry in extended else 0
    for line in history.changes(extended[max(0, at - 1) : at + 1]):
        print(f"changed since generation {extended[at - 1].generation}: {line}")
    print(
        f"generation {entry.generation}: {entry.count} checkpoints, history of {len(extended)} reduction(s)",
        file=sys.stderr,
    )
    if args.write_status:
        from benchcal.publish import write_run_status

        write_run_status(args.write_status, classification, ref, entry)
        log.info("status written to CalibrationRun %s", args.write_status)
    return 0
