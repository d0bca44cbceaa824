"""``reduce_table``: the whole reduction of a validated table, as one pure function.

Registry look-ups (standard shot counts, categories, the pre-calibration gauntlet shots)
are injected through ``ReduceOptions`` so tests can pin them; by default they come from
``benchcal.tasks.registry`` and an unknown benchmark simply has none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchcal.classification import MIN_CHECKPOINTS
from benchcal.errors import BadInput
from benchcal.results import CONTINUOUS_METRICS
from benchcal_reduce.bootstrap import DEFAULT_DRAWS, group_confidence
from benchcal_reduce.classify import DEFAULT_TIE_SHOTS, benchmark_starts, classify, group_codes
from benchcal_reduce.composite import before_after
from benchcal_reduce.per_shot import Settings, decide, pool_equal_flops, series_statistics

log = logging.getLogger("benchcal.reduce")

PRE_CALIBRATION_PRESET = "gauntlet-v0.1"
DEFAULT_MIN_MARGIN = 0.02  # rescaled accuracy above the floor (docs/reducer.md, "Above chance")
DEFAULT_MIN_GAIN = 0.02  # rescaled accuracy per decade of FLOPs (docs/reducer.md, "Flat")


def registry_standard_shots(name: str) -> int | None:
    """The registry's industry-standard shot count; None for unknown benchmarks."""
    try:
        from benchcal.tasks.registry import standard_shots
    except ImportError:  # the light core without the registry module
        return None
    try:
        return standard_shots(name)
    except BadInput:
        return None


def registry_category(name: str) -> str:
    try:
        from benchcal.tasks.registry import get_task
    except ImportError:
        return ""
    try:
        return get_task(name).category
    except BadInput:
        return ""


def registry_pre_calibration_shots(name: str) -> int | None:
    """The shot count the pre-calibration gauntlet (v0.1) aggregated, if the registry knows it."""
    try:
        from benchcal.tasks.registry import preset_shots
    except ImportError:
        return None
    try:
        return preset_shots(PRE_CALIBRATION_PRESET).get(name)
    except BadInput:
        return None


@dataclass(frozen=True)
class ReduceOptions:
    alpha: float = 0.05
    strict: bool = False  # the study's plain check: every step up, no noise tolerance
    correction: str = "bh"  # multiple-testing correction of the above-chance tests: "bh" | "holm"
    min_margin: float = DEFAULT_MIN_MARGIN  # above chance = beyond floor + this (rescaled)
    min_gain: float = DEFAULT_MIN_GAIN  # flat = rising by less than this per decade of FLOPs (rescaled)
    bootstrap: int = DEFAULT_DRAWS  # redraws for the confidence of each verdict; 0 = not computed
    seed: int = 0  # of the bootstrap
    standard_shots: Callable[[str], int | None] = registry_standard_shots
    category_of: Callable[[str], str] = registry_category
    pre_calibration_shots: Callable[[str], int | None] = registry_pre_calibration_shots

    def validate(self) -> None:
        if not 0 < self.alpha < 1:
            raise BadInput(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in ("bh", "holm"):
            raise BadInput(f"--correction must be 'bh' or 'holm', got {self.correction!r}")
        if not 0 <= self.min_margin < 1:
            raise BadInput(f"--min-margin must be in [0, 1), got {self.min_margin}")
        if not 0 < self.min_gain < 1:
            raise BadInput(f"--min-gain must be in (0, 1), got {self.min_gain}")
        if not 0 <= self.bootstrap <= 100_000:
            raise BadInput(f"--bootstrap must be between 0 and 100000 draws, got {self.bootstrap}")

    @property
    def settings(self) -> Settings:
        return Settings(
            alpha=self.alpha, strict=self.strict, min_margin=self.min_margin, min_gain=self.min_gain
        )


@dataclass
class Reduction:
    options: ReduceOptions
    table: pd.DataFrame  # the validated input rows
    per_shot: pd.DataFrame  # one row per (benchmark, num_fewshot)
    classification: pd.DataFrame  # one row per benchmark
    composite: dict[str, Any]  # per_checkpoint DataFrame + before/after summaries
    incomplete: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # benchmark -> shots -> missing
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # optional features not applied, and why
    latent_metrics: list[str] = field(default_factory=list)  # continuous metrics that were tested

    @property
    def checkpoints(self) -> pd.DataFrame:
        return self.table[["checkpoint", "flops"]].drop_duplicates().sort_values(["flops", "checkpoint"])


def _categories(table: pd.DataFrame, category_of: Callable[[str], str]) -> dict[str, str]:
    given = table[table["category"] != ""].groupby("benchmark")["category"].first().to_dict()
    return {b: given.get(b) or category_of(b) or "uncategorized" for b in table["benchmark"].unique()}


def _incomplete(table: pd.DataFrame) -> dict[str, dict[int, list[str]]]:
    """(benchmark, shots) pairs not scored on every checkpoint: benchmark -> shots -> missing."""
    all_ckpts = set(table["checkpoint"])
    counts = table.groupby(["benchmark", "num_fewshot"])["checkpoint"].nunique()
    short = counts[counts < len(all_ckpts)].index
    out: dict[str, dict[int, list[str]]] = {}
    if len(short):
        sub = table.set_index(["benchmark", "num_fewshot"]).loc[short].reset_index()
        for (bench, shots), g in sub.groupby(["benchmark", "num_fewshot"])["checkpoint"]:
            out.setdefault(str(bench), {})[int(shots)] = sorted(all_ckpts - set(g))
    return out


def _default_shots(table: pd.DataFrame, options: ReduceOptions) -> dict[str, int]:
    """Per benchmark, the shot count of the uncalibrated suite: the pre-calibration gauntlet's,
    else the industry standard, else 3, else the fewest evaluated (each only if evaluated)."""
    evaluated = table.groupby("benchmark")["num_fewshot"].agg(set)
    out = {}
    for name, shots in evaluated.items():
        for choice in (options.pre_calibration_shots(name), options.standard_shots(name), DEFAULT_TIE_SHOTS):
            if choice is not None and choice in shots:
                out[name] = int(choice)
                break
        else:
            out[name] = min(shots)
    return out


def reduce_table(df: pd.DataFrame, options: ReduceOptions | None = None) -> Reduction:
    """Classify every benchmark of a validated long table (see ``table.load_table``)."""
    options = options or ReduceOptions()
    options.validate()
    table = df.drop(columns=[c for c in df.columns if c.startswith("_")])
    points = pool_equal_flops(table)
    settings = options.settings
    stats_table, batches, notes = series_statistics(points, settings)
    per_shot = decide(stats_table, alpha=options.alpha, correction=options.correction)
    latent_metrics = [m for m in CONTINUOUS_METRICS if f"{m}_improves" in per_shot]
    observed = group_codes(
        per_shot["n_points"].to_numpy() >= MIN_CHECKPOINTS,
        *(per_shot[c].to_numpy()[None, :] for c in ("above_chance", "monotone", "evidence_against")),
        benchmark_starts(per_shot),
    )[0]
    confidence, alternatives = group_confidence(
        per_shot, batches, settings, options.correction, observed, options.bootstrap, options.seed
    )
    if options.bootstrap == 0:
        notes.append("confidence not computed (--bootstrap 0)")
    categories = _categories(table, options.category_of)
    classification = classify(
        per_shot,
        categories,
        options.standard_shots,
        strict=options.strict,
        alpha=options.alpha,
        latent_metrics=latent_metrics,
        confidence=confidence,
    )
    classification.insert(
        classification.columns.get_loc("borderline") + 1, "redraw_alternative", alternatives
    )
    warnings = []
    incomplete = _incomplete(table)
    for name, by_shots in incomplete.items():
        for shots, missing in by_shots.items():
            warnings.append(
                f"benchmark {name!r} {shots}-shot is missing on checkpoint(s) {', '.join(missing)}; tested on the rest"
            )
    pooled = table.groupby("flops")["checkpoint"].nunique()
    for flops in pooled.index[pooled > 1]:
        names = sorted(table.loc[table["flops"] == flops, "checkpoint"].unique())
        warnings.append(f"checkpoints {', '.join(names)} share flops={flops:g}; their results are pooled")
    for w in warnings:
        log.warning(w)
    composite = before_after(table, classification, _default_shots(table, options), categories)
    return Reduction(
        options, table, per_shot, classification, composite, incomplete, warnings, notes, latent_metrics
    )
