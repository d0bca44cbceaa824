"""Operator-wide settings, read once from the environment (set by the Helm chart)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchcal.errors import BadInput

DEFAULT_EVALUATOR_IMAGE = "ghcr.io/benchcal/evaluator:0.1.0"
DEFAULT_REDUCER_IMAGE = "ghcr.io/benchcal/reducer:0.1.0"
# the images' numeric USER; fsGroup makes results volumes writable: a fresh block-backed PVC (and
# most NFS/CephFS exports) has a root-owned 0755 root directory, which uid 65532 cannot write
DEFAULT_POD_SECURITY_CONTEXT = {
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "fsGroupChangePolicy": "OnRootMismatch",  # one chown pass per fresh volume, not per pod
}
POD_SECURITY_KEYS = ("runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy", "supplementalGroups")


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
    job_pod_security_context: Mapping[str, Any] = field(
        default_factory=lambda: dict(DEFAULT_POD_SECURITY_CONTEXT)
    )
    """uid/gid/fsGroup of evaluator and reducer pods unless spec.evaluator.podSecurityContext is set."""
    metrics_port: int = 8080
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    resync_seconds: float = 120.0
    """Every unfinished run is reconciled at least this often (a safety net for missed events)."""
    stall_check_seconds: float = 20.0
    """Runs whose Jobs look stuck (no pods, pods not running, queued) are re-checked this often."""
    unschedulable_seconds: float = 300.0
    """Pods Pending as unschedulable longer than this are reported in the run's status."""


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


def _list(env: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if key not in env:
        return default
    return tuple(x.strip() for x in env[key].split(",") if x.strip())


def _security(env: Mapping[str, str], key: str) -> dict[str, Any]:
    raw = env.get(key, "").strip()
    if not raw:
        return dict(DEFAULT_POD_SECURITY_CONTEXT)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{key}: not JSON ({exc.msg}): {raw!r}") from None
    if not isinstance(value, dict) or set(value) - set(POD_SECURITY_KEYS):
        raise BadInput(f"{key}: expected a JSON object with only {', '.join(POD_SECURITY_KEYS)}; got {raw!r}")
    if value.get("runAsUser") == 0:
        raise BadInput(f"{key}: runAsUser 0 (root) is refused by Pod Security 'restricted'")
    return {k: v for k, v in value.items() if v is not None}


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        namespaces=_list(env, "BENCHCAL_NAMESPACES", ()),
        evaluator_image=env.get("BENCHCAL_EVALUATOR_IMAGE", "").strip() or DEFAULT_EVALUATOR_IMAGE,
        reducer_image=env.get("BENCHCAL_REDUCER_IMAGE", "").strip() or DEFAULT_REDUCER_IMAGE,
        max_running_checkpoints=_int(env, "BENCHCAL_MAX_RUNNING_CHECKPOINTS", 0),
        allow_trust_remote_code=_bool(env, "BENCHCAL_ALLOW_TRUST_REMOTE_CODE", False),
        job_pod_security_context=_security(env, "BENCHCAL_JOB_POD_SECURITY_CONTEXT"),
        metrics_port=_int(env, "BENCHCAL_METRICS_PORT", 8080),
        resync_seconds=float(_int(env, "BENCHCAL_RESYNC_SECONDS", 120, minimum=5)),
        stall_check_seconds=float(_int(env, "BENCHCAL_STALL_CHECK_SECONDS", 20, minimum=1)),
        unschedulable_seconds=float(_int(env, "BENCHCAL_UNSCHEDULABLE_SECONDS", 300, minimum=0)),
    )
