"""The classification vocabulary and the one typed shape of ``status.classification``.

The reducer decides a group per benchmark and builds a ``StatusClassification``; ``to_status()``
is exactly what goes into the CalibrationRun's status (the CRD's bounded, camelCase schema), and
``from_status()`` reads it back (tests, tools), rejecting anything else with the field named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchcal.errors import BadInput

ROBUST = "robust"  # monotone in FLOPs at every shot count evaluated
SHOT_DEPENDENT = "shot_dependent"  # monotone at some shot counts: use the recommended one
POORLY_BEHAVED = "poorly_behaved"  # above chance somewhere, monotone nowhere: drop it
NOISE = "noise"  # above chance at no shot count: keep, but warn
# not enough evidence either way (too few checkpoints, items or FLOPs range): re-evaluate, don't drop
INCONCLUSIVE = "inconclusive"
GROUPS = (ROBUST, SHOT_DEPENDENT, POORLY_BEHAVED, NOISE, INCONCLUSIVE)
RECOMMENDING_GROUPS = (ROBUST, SHOT_DEPENDENT)  # the groups that get a recommended shot count
CALIBRATED_GROUPS = (ROBUST, SHOT_DEPENDENT, NOISE)  # kept by calibration (noise is flagged)

# The fewest checkpoints with different training FLOPs a monotonicity test needs (two points are
# always "monotone"). The reducer refuses fewer; the CRD's spec.checkpoints minItems and
# benchcal.spec refuse them at admission, before any Job starts (tests tie the three together).
MIN_CHECKPOINTS = 3

MAX_BENCHMARKS = 64  # status.classification.benchmarks maxItems: etcd objects must stay small
MAX_NUMBERS = 8  # status.classification.benchmarks[].numbers maxProperties


@dataclass(frozen=True)
class BenchmarkVerdict:
    """One benchmark in the status: its group, recommended shots, the confidence of the verdict,
    two flags and a few finite statistics. ``None`` = not computed (left out of the status)."""

    name: str
    group: str
    recommended_shots: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None  # share of the reducer's bootstrap redraws giving this group, 0..1
    borderline: bool | None = None  # the confidence is below the reducer's borderline threshold
    latent_trend: bool | None = None  # noise on accuracy, but a continuous metric already improves

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise BadInput(f"benchmark {self.name!r}: group {self.group!r} is not one of {list(GROUPS)}")
        conf = self.confidence
        if conf is not None and (
            isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0
        ):  # NaN fails the range test too
            raise BadInput(f"benchmark {self.name!r}: confidence must be a number in [0, 1], got {conf!r}")
        for key, flag in (("borderline", self.borderline), ("latentTrend", self.latent_trend)):
            if flag is not None and not isinstance(flag, bool):
                raise BadInput(f"benchmark {self.name!r}: {key} must be true or false, got {flag!r}")
        if len(self.numbers) > MAX_NUMBERS:
            raise BadInput(f"benchmark {self.name!r}: at most {MAX_NUMBERS} numbers, got {len(self.numbers)}")
        for key, value in self.numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BadInput(
                    f"benchmark {self.name!r}: numbers.{key} must be a finite number, got {value!r}"
                )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "group": self.group}
        if self.recommended_shots is not None:
            out["recommendedShots"] = int(self.recommended_shots)
        if self.confidence is not None:
            out["confidence"] = float(self.confidence)
        if self.borderline is not None:
            out["borderline"] = self.borderline
        if self.latent_trend is not None:
            out["latentTrend"] = self.latent_trend
        if self.numbers:
            out["numbers"] = {k: float(v) for k, v in self.numbers.items()}
        return out


@dataclass(frozen=True)
class StatusClassification:
    """``status.classification``: counts over every benchmark, verdicts of the first MAX_BENCHMARKS."""

    counts: dict[str, int]  # every group in GROUPS, over all benchmarks (listed or not)
    benchmarks: tuple[BenchmarkVerdict, ...]  # sorted by name, at most MAX_BENCHMARKS
    total_benchmarks: int
    truncated: bool
    composite_before: bool | None = None  # composite monotone in FLOPs before calibration
    composite_after: bool | None = None  # ... and after dropping poorly behaved benchmarks

    @classmethod
    def from_verdicts(
        cls,
        verdicts: Iterable[BenchmarkVerdict],
        *,
        composite_before: bool | None = None,
        composite_after: bool | None = None,
        max_benchmarks: int = MAX_BENCHMARKS,
    ) -> StatusClassification:
        """Bound a full classification: count every verdict, list the first ``max_benchmarks`` by name."""
        every = sorted(verdicts, key=lambda v: v.name)
        return cls(
            counts={g: sum(1 for v in every if v.group == g) for g in GROUPS},
            benchmarks=tuple(every[: min(max_benchmarks, MAX_BENCHMARKS)]),
            total_benchmarks=len(every),
            truncated=len(every) > min(max_benchmarks, MAX_BENCHMARKS),
            composite_before=composite_before,
            composite_after=composite_after,
        )

    def to_status(self) -> dict[str, Any]:
        """The CRD's ``status.classification`` object (camelCase, JSON-ready)."""
        out: dict[str, Any] = {
            "counts": {g: int(self.counts.get(g, 0)) for g in GROUPS},
            "benchmarks": [b.to_status() for b in self.benchmarks],
            "truncated": bool(self.truncated),
            "totalBenchmarks": int(self.total_benchmarks),
        }
        composite = {
            k: bool(v)
            for k, v in (("before", self.composite_before), ("after", self.composite_after))
            if v is not None
        }
        if composite:
            out["compositeMonotone"] = composite
        return out

    @classmethod
    def from_status(
        cls, status: Mapping[str, Any], where: str = "status.classification"
    ) -> StatusClassification:
        """Read ``status.classification`` back; BadInput naming the field for any other shape."""
        if not isinstance(status, Mapping):
            raise BadInput(f"{where}: expected an object")
        try:
            counts = status["counts"]
            items = status["benchmarks"]
            if not isinstance(counts, Mapping) or set(counts) - set(GROUPS):
                raise BadInput(f"{where}.counts: expected counts of {list(GROUPS)}, got {counts!r}")
            if not isinstance(items, list):
                raise BadInput(f"{where}.benchmarks: expected a list")
            benchmarks = tuple(
                BenchmarkVerdict(
                    name=str(item["name"]),
                    group=str(item["group"]),
                    recommended_shots=item.get("recommendedShots"),
                    numbers=dict(item.get("numbers") or {}),
                    confidence=item.get("confidence"),
                    borderline=item.get("borderline"),
                    latent_trend=item.get("latentTrend"),
                )
                for item in items
            )
            composite = status.get("compositeMonotone") or {}
            return cls(
                counts={g: int(counts.get(g, 0)) for g in GROUPS},
                benchmarks=benchmarks,
                total_benchmarks=int(status["totalBenchmarks"]),
                truncated=bool(status["truncated"]),
                composite_before=composite.get("before"),
                composite_after=composite.get("after"),
            )
        except KeyError as exc:
            raise BadInput(f"{where}: missing field {exc.args[0]!r}") from None
        except (TypeError, AttributeError) as exc:
            raise BadInput(f"{where}: {exc}") from None
