"""Operator under load: N CalibrationRuns x M checkpoints applied at once (local API server).

Measures the operator process's peak RSS (VmHWM) and the latency from a Job's completion
(the job runner's status write) to the CalibrationRun status reflecting it, from the API
server's own event timestamps. The operator and API are real; Job containers run a trivial
stand-in command (see tests/e2e/load.py). Goal: median latency under 2 s.

    .venv/bin/python benchmarks/bench_operator_load.py --runs 50 --checkpoints 5 --limit 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import E2E
from tests.e2e.load import run_load, stand_in


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--checkpoints", type=int, default=5)
    parser.add_argument("--limit", type=int, default=2, help="BENCHCAL_MAX_RUNNING_CHECKPOINTS")
    parser.add_argument("--parallel-pods", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        world = E2E(
            Path(tmp),
            command_override=stand_in,
            max_parallel_pods=args.parallel_pods,
            operator_env={"BENCHCAL_MAX_RUNNING_CHECKPOINTS": str(args.limit)},
        )
        assert world.cluster is not None
        world.cluster.server.api.store.max_history = 1_000_000
        try:
            report = run_load(world, args.runs, args.checkpoints, timeout=args.timeout)
        finally:
            world.close()
    duplicates = {k: v for k, v in report.job_creations.items() if v != 1}
    print(
        json.dumps(
            {
                "runs": report.runs,
                "checkpoints": report.checkpoints,
                "limit": args.limit,
                "wall_s": round(report.wall_s, 1),
                "phases": report.phases,
                "jobs_created": sum(report.job_creations.values()),
                "duplicate_jobs": duplicates,
                "max_concurrent_evaluators_per_run": report.max_concurrent_evaluators,
                "latency_samples": len(report.latencies_s),
                "latency_median_s": round(report.latency_median_s, 3),
                "latency_p95_s": round(report.latency_p95_s, 3),
                "latency_max_s": round(max(report.latencies_s), 3) if report.latencies_s else None,
                "watch_delivery_median_s": round(report.watch_lag_median_s, 3),
                "operator_cpu_s": None if report.operator_cpu_s is None else round(report.operator_cpu_s, 1),
                "api_requests": report.api_requests,
                "api_mean_request_ms": round(1000 * report.api_seconds / max(1, report.api_requests), 1),
                "operator_peak_rss_mib": None
                if report.operator_peak_rss_mib is None
                else round(report.operator_peak_rss_mib, 1),
            },
            indent=2,
        )
    )
    return 0 if report.phases == {"Succeeded": args.runs} and not duplicates else 1


if __name__ == "__main__":
    raise SystemExit(main())
