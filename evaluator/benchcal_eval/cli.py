"""``benchcal evaluate``: score one checkpoint on (benchmark, shot count) pairs, with one model load.

``--tasks`` takes a selector with ``--shots`` (every benchmark at every shot count) or explicit
pairs, ``'arc_easy:0,3;piqa:0'`` (``benchcal.tasks.selection``); the operator and ``benchcal run``
pass the pairs form (``benchcal.commands``), so a checkpoint is always one call.

``--out`` and ``--model`` may be fsspec URLs (``s3://``, ``gs://``; ``benchcal.storage``). The model's
identity is resolved (hashed, fetched, or its hub commit found) before its weights are loaded, and
they are loaded only if some pair has no result under its key yet.

Exit codes: 0 every pair finished; 2 bad input (nothing was evaluated); 1 crash or some pairs
failed (finished pairs are kept, and a re-run resumes). See docs/evaluator.md.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from benchcal import naming, storage
from benchcal.errors import EXIT_CRASH, EXIT_OK, BadInput
from benchcal.tasks.selection import DEFAULT_SHOTS, format_shots

log = logging.getLogger("benchcal.evaluate")


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def _flops(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--flops must be a number like 1.2e15, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--flops must be a positive finite number, got {text!r}")
    return value


def _shard_from_env() -> str:
    return f"{os.environ.get(naming.ENV_SHARD_INDEX, '0')}/{os.environ.get(naming.ENV_NUM_SHARDS, '1')}"


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise BadInput(f"--shard must be INDEX/COUNT (e.g. 0/4), got {text!r}") from None
    return index, count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument(
        "--model", required=True, help="HF model dir, .gguf file, hub id, or builtin:tiny-series/NAME"
    )
    p.add_argument(
        "--tasks",
        required=True,
        help="'a,b' | all | category:NAME | preset:gauntlet-v0.1 (with --shots), "
        "or (benchmark, shots) pairs: 'arc_easy:0,3;piqa:0'",
    )
    p.add_argument(
        "--shots",
        help=f"comma-separated shot counts for a selector (default {format_shots(DEFAULT_SHOTS)}); "
        "not with pairs",
    )
    p.add_argument(
        "--out", required=True, help="output directory for this checkpoint (a path, or a URL: s3://, gs://)"
    )
    p.add_argument("--limit", type=_positive_int("--limit"), help="first N examples per benchmark")
    p.add_argument("--checkpoint", help="checkpoint name in the summary (default: the model's basename)")
    p.add_argument("--flops", type=_flops, help="training FLOPs of this checkpoint, written to the summary")
    p.add_argument("--seed", type=int, help="few-shot sampling seed (default: each task's, 1234)")
    p.add_argument(
        "--fewshot-sampling",
        choices=("nested", "independent", "fixed"),
        default="nested",
        help="how few-shot examples are drawn (docs/tasks.md): nested (default; the k-shot shots "
        "extend the fewer-shot ones), independent (llm-foundry's per-prompt draws), fixed (one set "
        "per benchmark)",
    )
    p.add_argument("--task-file", type=Path, help="YAML with extra benchmarks in the registry's schema")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--max-length", type=_positive_int("--max-length"), help="max tokens per sequence")
    p.add_argument(
        "--token-budget", type=_positive_int("--token-budget"), help="padded tokens per forward pass"
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the checkpoint")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument(
        "--per-example", action="store_true", help="also write examples/<task>/<k>shot.<key>.jsonl"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute pairs that already have a result under their key, and replace those results "
        "(results of other configurations are never touched)",
    )
    p.add_argument("--publish-configmap", metavar="NAMESPACE/NAME", help="publish the summary as a ConfigMap")
    p.add_argument(
        "--outbox",
        metavar="DIR",
        help="hand the summary to the publisher sidecar through DIR and wait for its answer "
        "(the operator's pods: the evaluator itself has no Kubernetes credentials)",
    )
    p.add_argument(
        "--publish-timeout", type=float, default=300.0, help="seconds to wait for the publisher's answer"
    )
    p.add_argument(
        "--shard",
        metavar="INDEX/COUNT",
        default=_shard_from_env(),
        help="evaluate every COUNT-th (benchmark, shots) pair starting at INDEX (default from "
        "BENCHCAL_SHARD_INDEX/BENCHCAL_NUM_SHARDS, set by the operator's Indexed Jobs)",
    )


def _check_target(target: str | None) -> None:
    if target is None:
        return
    parts = target.split("/")
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"--publish-configmap must be NAMESPACE/NAME, got {target!r}")


def _resolve_plan(args: argparse.Namespace):
    from benchcal.tasks.registry import load_task_file
    from benchcal.tasks.selection import select
    from benchcal_eval.plan import prepare

    extra = load_task_file(args.task_file) if args.task_file else []
    pairs = select(args.tasks, args.shots, extra)
    return prepare(
        pairs, limit=args.limit, seed=args.seed, per_example=args.per_example, shard=_parse_shard(args.shard),
        fewshot_sampling=args.fewshot_sampling,
        max_length=args.max_length, overwrite=args.overwrite,
    )  # fmt: skip


def _check_out(out: str) -> None:
    if storage.is_url(out):
        storage.check_driver(out, "--out")
        return
    path = storage.local_path(out)
    if path.exists() and not path.is_dir():
        raise BadInput(f"--out {out!r} exists and is not a directory")


def run(args: argparse.Namespace) -> int:
    # Everything a user can get wrong is checked before the (slow) model work.
    _check_target(args.publish_configmap)
    if args.outbox and args.publish_configmap:
        raise BadInput("--outbox and --publish-configmap: choose one way to publish the summary")
    if args.outbox and not Path(args.outbox).is_dir():
        raise BadInput(f"--outbox {args.outbox}: not a directory")
    _check_out(args.out)
    if storage.is_url(args.model):
        storage.check_driver(args.model, "--model")
    plan = _resolve_plan(args)
    log.info(
        "%d benchmark(s), %d (benchmark, shots) pairs%s",
        len(plan.tasks),
        len(plan.pairs),
        f" (shard {plan.shard[0]} of {plan.shard[1]})" if plan.shard[1] > 1 else "",
    )

    from benchcal_eval.models import load_model, resolve_device, resolve_dtype, resolve_model
    from benchcal_eval.progress import new_reporter
    from benchcal_eval.runner import CheckpointModel, evaluate_checkpoint

    checkpoint = args.checkpoint or Path(args.model.rstrip("/")).name or args.model
    progress = new_reporter()
    progress.begin(checkpoint, len(plan.pairs))

    device = resolve_device(args.device)
    dtype = str(resolve_dtype(args.dtype, device)).removeprefix("torch.")
    identity = resolve_model(args.model, args.revision)
    engines: list[Any] = []

    def load() -> tuple[Any, Any]:
        from benchcal_eval.engine import ScoringEngine

        progress.loading(args.model)
        lm = load_model(
            args.model, dtype=args.dtype, device=args.device, revision=args.revision,
            trust_remote_code=args.trust_remote_code, identity=identity,
        )  # fmt: skip
        if args.max_length is not None:
            if args.max_length > lm.max_length:
                raise BadInput(
                    f"--max-length {args.max_length} exceeds the model's context of {lm.max_length} tokens"
                )
            lm.max_length = args.max_length
        engines.append(ScoringEngine(lm, token_budget=args.token_budget))
        return lm, engines[0]

    record = {**identity.record(), "dtype": dtype, "device": str(device)}
    model = CheckpointModel(identity.key(dtype), record, load)
    summary = evaluate_checkpoint(
        model, plan, args.out, checkpoint=checkpoint, flops=args.flops, progress=progress
    )
    scored = 0
    if engines:  # the engine's own count: what this process scored, resumed pairs not included
        scored = engines[0].stats.requests + int(engines[0].stats.extra.get("generation_requests", 0))
    progress.finished(requests_scored=scored)
    if engines:
        stats = engines[0].stats
        log.info(
            "done: %d results, %d failures; engine: %d scoring + %d generation requests, %d scored tokens, %.1fs",
            len(summary.results), len(summary.failures), stats.requests, stats.extra.get("generation_requests", 0),
            stats.computed_tokens, stats.seconds,
        )  # fmt: skip
    else:
        log.info(
            "done: every pair was finished already (%d results); the model was not loaded",
            len(summary.results),
        )
    if args.publish_configmap:
        from benchcal.publish import publish_summary

        publish_summary(summary, args.publish_configmap)
        log.info("published summary to ConfigMap %s", args.publish_configmap)
    if args.outbox:
        from benchcal.outbox import PublishFailed, deliver

        try:
            log.info("%s", deliver(Path(args.outbox), summary.to_dict(), timeout=args.publish_timeout))
        except PublishFailed as exc:  # never a silent success: the exit code and message say why
            log.error("%s", exc.message)
            print(f"error: {exc.message}", flush=True)
            return exc.exit_code
    if summary.failures:
        for f in summary.failures:
            log.error("failed: %s %d-shot: %s", f.benchmark, f.num_fewshot, f.error)
        return EXIT_CRASH
    return EXIT_OK
