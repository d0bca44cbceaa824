"""Operator-wide settings, read once from the environment (set by the Helm chart)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from benchcal.errors import BadInput

DEFAULT_EVALUATOR_IMAGE = "ghcr.io/benchcal/evaluator:0.1.0"
DEFAULT_REDUCER_IMAGE = "ghcr.io/benchcal/reducer:0.1.0"


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty = every namespace (cluster-wide RBAC needed)."""
    evaluator_image: str = DEFAULT_EVALUATOR_IMAGE
    """Image of evaluator Jobs unless spec.evaluator.image overrides it."""
    reducer_image: str = DEFAULT_REDUCER_IMAGE
    """Image of the reducer Job."""
    max_running_checkpoints: int = 0
    """Evaluator Jobs running at once per CalibrationRun; 0 = no limit."""
    allow_trust_remote_code: bool = False
    """Whether a run may set spec.evaluator.trustRemoteCode (a run asking without it is rejected)."""
    job_service_account: str = "benchcal-job"
    """ServiceAccount of evaluator and reducer pods (configmaps + calibrationruns/status only)."""
    metrics_port: int = 8080
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    resync_seconds: float = 120.0
    """Interval of the safety-net timer on unfinished runs."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{key}={raw!r}: expected an integer") from None
    if value < minimum:
        raise BadInput(f"{key}={raw!r}: must be >= {minimum}")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise BadInput(f"{key}={raw!r}: expected true or false")


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    namespaces = tuple(n.strip() for n in env.get("BENCHCAL_NAMESPACES", "").split(",") if n.strip())
    return Settings(
        namespaces=namespaces,
        evaluator_image=env.get("BENCHCAL_EVALUATOR_IMAGE", "").strip() or DEFAULT_EVALUATOR_IMAGE,
        reducer_image=env.get("BENCHCAL_REDUCER_IMAGE", "").strip() or DEFAULT_REDUCER_IMAGE,
        max_running_checkpoints=_int(env, "BENCHCAL_MAX_RUNNING_CHECKPOINTS", 0),
        allow_trust_remote_code=_bool(env, "BENCHCAL_ALLOW_TRUST_REMOTE_CODE", False),
        job_service_account=env.get("BENCHCAL_JOB_SERVICE_ACCOUNT", "").strip() or "benchcal-job",
        metrics_port=_int(env, "BENCHCAL_METRICS_PORT", 8080),
        resync_seconds=float(_int(env, "BENCHCAL_RESYNC_SECONDS", 120, minimum=5)),
    )
