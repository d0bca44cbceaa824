"""Prometheus metrics on BENCHCAL_METRICS_PORT (/metrics): runs by phase, Jobs created, errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from benchcal.lifecycle import RUN_PHASES

REGISTRY = CollectorRegistry()
RUNS = Gauge("benchcal_runs", "CalibrationRuns seen by this operator, by phase", ["phase"], registry=REGISTRY)
JOBS_CREATED = Counter(
    "benchcal_jobs_created", "Child Jobs created, by component", ["component"], registry=REGISTRY
)
RECONCILE_ERRORS = Counter(
    "benchcal_reconcile_errors", "Reconciles that raised, by kind of error", ["kind"], registry=REGISTRY
)
RECONCILES = Counter("benchcal_reconciles", "Reconciles performed", registry=REGISTRY)

_phases: dict[tuple[str, str], str] = {}


def record_phase(namespace: str, name: str, phase: str | None) -> None:
    """Remember one run's phase (None forgets a deleted run) and refresh the gauge."""
    if phase is None:
        _phases.pop((namespace, name), None)
    else:
        _phases[(namespace, name)] = phase
    for known in RUN_PHASES:
        RUNS.labels(phase=known).set(sum(1 for p in _phases.values() if p == known))


def serve(port: int) -> None:
    if port:
        start_http_server(port, registry=REGISTRY)
