"""Fused LM-head scoring, ``lm_head_logprobs``: one entry point, implementation picked in one place.

It dispatches to the Triton kernel (``triton_lm_head_logprobs.py``) on CUDA and to the pure-torch
reference (``reference.py``) elsewhere. ``BENCHCAL_KERNEL=reference|triton`` (or the ``impl``
argument) overrides the choice. (The kernel module is not named ``lm_head_logprobs.py``: importing
a submodule binds its name on this package, which would replace this function.)
"""

from __future__ import annotations

import os

import torch

from benchcal_eval.kernels.reference import lm_head_logprobs as reference_lm_head_logprobs

__all__ = ["lm_head_logprobs", "reference_lm_head_logprobs", "select_impl"]


def select_impl(device: torch.device, impl: str | None = None) -> str:
    choice = impl or os.environ.get("BENCHCAL_KERNEL", "auto")
    if choice not in ("auto", "reference", "triton"):
        raise ValueError(f"BENCHCAL_KERNEL must be auto, reference or triton, got {choice!r}")
    if choice == "auto":
        return "triton" if device.type == "cuda" and _triton_available() else "reference"
    return choice


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def lm_head_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    impl: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [N, C], weight [V, C], targets [N] -> (target log-prob fp32 [N], target-is-argmax [N])."""
    if select_impl(hidden.device, impl) == "triton":
        from benchcal_eval.kernels.triton_lm_head_logprobs import triton_lm_head_logprobs

        return triton_lm_head_logprobs(hidden, weight, targets, bias, scale=scale, softcap=softcap)
    return reference_lm_head_logprobs(hidden, weight, targets, bias, scale=scale, softcap=softcap)
