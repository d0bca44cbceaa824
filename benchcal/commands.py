"""Every command line a CalibrationRun runs: one ``benchcal evaluate`` per checkpoint, one ``benchcal reduce``.

Pure, and shared by the operator (container args of the evaluator and reducer Jobs) and by
``benchcal run`` (local subprocesses and the in-process reduce), so a run evaluates and reduces the
same way in both places. A checkpoint is one command and one model load: its benchmarks go in
as explicit (benchmark, shots) pairs (``benchcal.tasks.selection``), whatever their shot lists.
Where the outputs go is ``benchcal.layout``'s business; callers pass the directories.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchcal.spec import CalibrationRun, Checkpoint
from benchcal.tasks.selection import format_pairs

EXECUTABLE = ("benchcal",)  # the console script in the images; `benchcal run` uses `python -m benchcal`


def evaluate_command(
    run: CalibrationRun,
    ckpt: Checkpoint,
    *,
    model: str,
    out_dir: str,
    publish_target: str | None = None,
    outbox: str | None = None,
    executable: Sequence[str] = EXECUTABLE,
) -> list[str]:
    """The checkpoint's ``benchcal evaluate`` argv.

    ``model`` is the model argument as the evaluator will see it (a path inside the pod, a local
    path, a hub id or ``builtin:NAME``); ``out_dir`` is the checkpoint's results directory;
    ``publish_target`` (NAMESPACE/NAME) the ConfigMap the evaluator publishes its summary to
    itself, or ``outbox`` the directory it hands the summary to a publisher through
    (``publish_command``; the operator's pods).
    """
    ev = run.evaluator
    pairs = [(sel.name, sel.shots) for sel in run.suite.benchmarks]
    cmd = [*executable, "evaluate", "--model", model, "--tasks", format_pairs(pairs), "--out", out_dir]
    cmd += ["--checkpoint", ckpt.name, "--flops", repr(float(ckpt.flops)), "--seed", str(run.suite.seed)]
    cmd += ["--fewshot-sampling", run.suite.fewshot_sampling, "--dtype", ev.dtype]
    if run.suite.limit is not None:
        cmd += ["--limit", str(run.suite.limit)]
    if ev.max_length is not None:
        cmd += ["--max-length", str(ev.max_length)]
    if ev.token_budget is not None:
        cmd += ["--token-budget", str(ev.token_budget)]
    if ev.trust_remote_code:
        cmd.append("--trust-remote-code")
    if ckpt.model.kind == "hub" and ckpt.model.revision:
        cmd += ["--revision", ckpt.model.revision]
    if publish_target:
        cmd += ["--publish-configmap", publish_target]
    if outbox:
        cmd += ["--outbox", outbox]
    return cmd


def publish_command(*, outbox: str, target: str, executable: Sequence[str] = EXECUTABLE) -> list[str]:
    """The publisher sidecar's ``benchcal publish`` argv: summary from ``outbox`` to ConfigMap ``target``."""
    return [*executable, "publish", "--outbox", outbox, "--configmap", target]


def reduce_command(
    run: CalibrationRun,
    *,
    out_dir: str,
    inputs: str | Sequence[str] | None = None,
    figures: bool = True,
    checkpoints: Sequence[str] | None = None,
    history_file: str | None = None,
    executable: Sequence[str] = EXECUTABLE,
) -> list[str]:
    """The run's ``benchcal reduce`` argv.

    ``inputs``: a directory of checkpoint outputs, or the checkpoint directories to reduce, exactly
    (``benchcal run``: the checkpoints it evaluated); None reads the summaries the
    evaluator Jobs published to ConfigMaps and writes the classification into the run's status
    (the reducer Job), its history entry under ``--generation`` = metadata.generation. ``out_dir``
    is the report directory; ``history_file`` the local verdict history (``benchcal run``: its
    generation follows the history, the YAML has none). ``checkpoints``: reduce exactly these
    (``--checkpoints``; the reducer Job of a run that grew or shrank: removed checkpoints' summaries
    stay, unreduced).
    """
    target = f"{run.namespace}/{run.name}"
    cmd = [*executable, "reduce"]
    if inputs is None:
        cmd += ["--from-configmaps", target, "--write-status", target, "--generation", str(run.generation)]
    else:
        cmd += [inputs] if isinstance(inputs, str) else list(inputs)
    if checkpoints is not None:
        cmd += ["--checkpoints", ",".join(checkpoints)]
    if history_file is not None:
        cmd += ["--history", history_file]
    cmd += ["--out", out_dir, "--alpha", repr(run.classification.alpha)]
    if run.classification.strict:
        cmd.append("--strict")
    if not figures:
        cmd.append("--no-figures")
    return cmd
