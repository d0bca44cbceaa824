"""The results layout of a CalibrationRun, the same locally and in the cluster::

    <root>/checkpoints/<checkpoint>/   one evaluator output directory per checkpoint
                                       (its inside: ``benchcal.results``: results/, examples/, summary.json)
    <root>/report/                     the reducer's outputs (report.md, classification.csv, ...)
    <root>/history.json                the verdict history of ``benchcal run`` (``benchcal.history``;
                                       in a cluster it is ``status.history``)

``<root>`` is ``spec.results`` as the evaluator and reducer see it: a local directory for
``benchcal run``, the mounted PVC path or an object-store URI in a pod. Roots given as ``Path``
give ``Path``s back; roots given as strings (URIs included) give strings joined with '/'.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TypeVar

CHECKPOINTS_DIR = "checkpoints"
REPORT_DIR = "report"
HISTORY_FILE = "history.json"

Root = TypeVar("Root", bound="str | PurePath")


def _join(root: Root, *parts: str) -> Root:
    if isinstance(root, PurePath):
        return root.joinpath(*parts)
    return "/".join([root.rstrip("/"), *parts])


def checkpoints_dir(root: Root) -> Root:
    """The directory holding every checkpoint's output directory (the reducer's input)."""
    return _join(root, CHECKPOINTS_DIR)


def checkpoint_dir(root: Root, checkpoint: str) -> Root:
    """One checkpoint's evaluator output directory (``benchcal evaluate --out``)."""
    return _join(root, CHECKPOINTS_DIR, checkpoint)


def report_dir(root: Root) -> Root:
    """The reducer's output directory (``benchcal reduce --out``)."""
    return _join(root, REPORT_DIR)


def history_file(root: Root) -> Root:
    """The local verdict history, extended by every reduction (``benchcal reduce --history``)."""
    return _join(root, HISTORY_FILE)
