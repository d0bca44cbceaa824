"""Pure job-controller rules: Job conditions, completed-index sets, podFailurePolicy matching."""

from __future__ import annotations

import calendar
import time
from typing import Any

from tests.kube.apiserver.types import now_iso

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def job_condition(ctype: str, reason: str, message: str, status: str = "True") -> dict[str, Any]:
    t = now_iso()
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": t,
        "lastTransitionTime": t,
    }


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def format_indexes(indexes: set[int]) -> str:
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def failure_policy_action(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, int | None]:
    """(action, rule index) for a failed pod: FailJob | Ignore | FailIndex | Count."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    status = pod.get("status") or {}
    # init containers (sidecars included) count too, as in the job controller
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    conditions = (pod.get("status") or {}).get("conditions") or []
    for i, rule in enumerate(rules):
        codes = rule.get("onExitCodes")
        if codes:
            for cs in statuses:
                term = (cs.get("state") or {}).get("terminated") or {}
                code = term.get("exitCode")
                if code is None or code == 0 or (codes.get("containerName") not in (None, cs["name"])):
                    continue
                hit = code in codes["values"]
                if hit == (codes.get("operator", "In") == "In"):
                    return rule["action"], i
        for pat in rule.get("onPodConditions") or []:
            if any(
                c.get("type") == pat["type"] and c.get("status") == pat.get("status", "True")
                for c in conditions
            ):
                return rule["action"], i
    return "Count", None


def job_finished(job: dict[str, Any]) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def seconds_since(ts: str) -> float:
    return time.time() - calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
