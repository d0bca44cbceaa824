"""The load scenario shared by tests/e2e/test_load.py and benchmarks/bench_operator_load.py.

Many CalibrationRuns applied at once against the real operator and the local API server. The
job runner replaces each container's command with a trivial stand-in (``sleep``): 250 real
evaluations do not fit on 2 cores; what is exercised is the operator, the API and the Job
lifecycle, not the evaluator.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.e2e.harness import E2E

STAND_IN = ["sh", "-c", "sleep 0.2"]


def stand_in(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    return STAND_IN


def run_manifests(runs: int, checkpoints: int) -> str:
    docs = []
    for r in range(runs):
        docs.append(
            {
                "apiVersion": "benchcal.dev/v1alpha1",
                "kind": "CalibrationRun",
                "metadata": {"name": f"load-{r:03d}"},
                "spec": {
                    "checkpoints": [
                        {
                            "name": f"c{c}",
                            "model": {"builtin": f"tiny-series/s{c % 5 + 1}"},
                            "flops": float(10 ** (11 + c)),
                        }
                        for c in range(checkpoints)
                    ],
                    "suite": {"benchmarks": [{"name": "copa"}], "shots": [0], "limit": 4},
                },
            }
        )
    return yaml.safe_dump_all(docs)


@dataclass
class LoadReport:
    runs: int
    checkpoints: int
    wall_s: float
    phases: dict[str, int]
    job_creations: dict[str, int]
    max_concurrent_evaluators: int
    latencies_s: list[float] = field(default_factory=list)
    operator_peak_rss_mib: float | None = None
    operator_cpu_s: float | None = None
    api_requests: int = 0
    api_seconds: float = 0.0
    watch_lag_median_s: float = float("nan")

    @property
    def latency_median_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else float("nan")

    @property
    def latency_p95_s(self) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _finished_job(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def analyse(e2e: E2E) -> tuple[list[float], int]:
    """Latency from each Job's completion to the run status reflecting it; peak concurrency per run."""
    assert e2e.cluster is not None
    store = e2e.cluster.server.api.store
    with store.lock:
        events = list(store.history)
    job_done_at: dict[tuple[str, str], float] = {}  # (run, job) -> time
    active: dict[str, set[str]] = {}
    peak = 0
    latencies = []
    pending: dict[tuple[str, str], float] = {}
    for ev in events:
        meta = ev.obj["metadata"]
        if (ev.group, ev.plural) == ("batch", "jobs"):
            run = (meta.get("labels") or {}).get("benchcal.dev/run", "")
            component = (meta.get("labels") or {}).get("benchcal.dev/component", "")
            if component == "evaluator" and ev.type == "ADDED":
                active.setdefault(run, set()).add(meta["name"])
                peak = max(peak, len(active[run]))
            if ev.type == "MODIFIED" and _finished_job(ev.obj) and not (ev.prev and _finished_job(ev.prev)):
                active.get(run, set()).discard(meta["name"])
                job_done_at[(run, meta["name"])] = ev.at
                pending[(run, meta["name"])] = ev.at
        elif (ev.group, ev.plural) == ("benchcal.dev", "calibrationruns") and ev.type == "MODIFIED":
            status = ev.obj.get("status") or {}
            seen = {
                c.get("jobName")
                for c in status.get("checkpoints") or []
                if c.get("phase") in ("Succeeded", "Failed")
            }
            if status.get("phase") in ("Succeeded", "Failed"):
                seen.add((status.get("reducer") or {}).get("jobName"))
            for key in [k for k in pending if k[0] == meta["name"] and k[1] in seen]:
                latencies.append(ev.at - pending.pop(key))
    return latencies, peak


def run_load(e2e: E2E, runs: int, checkpoints: int, timeout: float = 900) -> LoadReport:
    start = time.monotonic()
    e2e.kubectl("apply", "-f", "-", input=run_manifests(runs, checkpoints), timeout=120)
    names = [f"load-{r:03d}" for r in range(runs)]
    deadline = time.monotonic() + timeout
    phases: dict[str, int] = {}
    while time.monotonic() < deadline:
        items = e2e.kubectl.json("get", "calibrationruns")["items"]
        mine = [i for i in items if i["metadata"]["name"] in names]
        phases = {}
        for i in mine:
            phase = (i.get("status") or {}).get("phase", "<none>")
            phases[phase] = phases.get(phase, 0) + 1
        if phases.get("Succeeded", 0) + phases.get("Failed", 0) + phases.get("Invalid", 0) == runs:
            break
        time.sleep(2)
    wall = time.monotonic() - start
    latencies, peak = analyse(e2e)
    rss = e2e.operator.peak_rss_kib()
    return LoadReport(
        runs,
        checkpoints,
        wall,
        phases,
        e2e.job_creations(),
        peak,
        latencies,
        None if rss is None else rss / 1024,
        e2e.operator.cpu_seconds(),
        e2e.cluster.server.request_count,
        e2e.cluster.server.request_seconds,
        statistics.median(e2e.cluster.server.watch_lags or [float("nan")]),
    )
