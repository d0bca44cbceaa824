"""The ``benchcal evaluate`` command lines for one checkpoint of a CalibrationRun.

Pure, and shared by the operator (container commands of the evaluator Job) and by
``benchcal run`` (local subprocesses), so a run evaluates the same way in both places.
"""

from __future__ import annotations

from benchcal.spec import CalibrationRun, Checkpoint


def shot_groups(run: CalibrationRun) -> dict[tuple[int, ...], list[str]]:
    """Benchmarks grouped by their shot list, in suite order: one evaluator call per group."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for sel in run.suite.benchmarks:
        groups.setdefault(tuple(sel.shots), []).append(sel.name)
    return groups


def evaluate_commands(
    run: CalibrationRun,
    ckpt: Checkpoint,
    *,
    model: str,
    out_dir: str,
    publish_target: str | None = None,
    executable: tuple[str, ...] = ("benchcal",),
) -> list[list[str]]:
    """One ``benchcal evaluate`` argv per distinct shot list (usually one); the last one publishes.

    ``model`` is the model argument as the evaluator will see it (a path inside the pod, a local
    path, a hub id or ``builtin:NAME``); ``out_dir`` is the checkpoint's results directory.
    """
    ev = run.evaluator
    groups = shot_groups(run)
    commands = []
    for i, (shots, names) in enumerate(groups.items()):
        cmd = [*executable, "evaluate", "--model", model, "--tasks", ",".join(names)]
        cmd += ["--shots", ",".join(str(s) for s in shots), "--out", out_dir]
        cmd += ["--checkpoint", ckpt.name, "--flops", repr(float(ckpt.flops)), "--seed", str(run.suite.seed)]
        if run.suite.limit:
            cmd += ["--limit", str(run.suite.limit)]
        if ev.get("dtype", "auto") != "auto":
            cmd += ["--dtype", str(ev["dtype"])]
        if ev.get("maxLength"):
            cmd += ["--max-length", str(ev["maxLength"])]
        if ev.get("tokenBudget"):
            cmd += ["--token-budget", str(ev["tokenBudget"])]
        if ev.get("trustRemoteCode"):
            cmd.append("--trust-remote-code")
        if ckpt.model.kind == "hub" and ckpt.model.revision:
            cmd += ["--revision", ckpt.model.revision]
        if publish_target and i == len(groups) - 1:
            cmd += ["--publish-configmap", publish_target]
        commands.append(cmd)
    return commands
