"""The fused Triton LM-head kernel against the reference (the spec) and an fp64 computation.

On a CPU-only machine the kernel runs under the Triton interpreter (TRITON_INTERPRET=1, set
here before the kernel module is imported); shapes stay tiny because every program is simulated
in numpy. bf16 and large shapes need a GPU and carry the ``gpu`` marker.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    # tests/conftest.py sets this before anything imports triton; repeated for a direct run.
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton")

from benchcal_eval.kernels import lm_head_logprobs  # noqa: E402
from benchcal_eval.kernels.reference import lm_head_logprobs as reference  # noqa: E402

# Absolute tolerance on log-probs, keyed by the input dtype (inputs are compared in that dtype
# against references computed from the same rounded inputs).
ATOL = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}


@pytest.fixture(scope="module")
def kernel():
    from benchcal_eval.kernels import triton_lm_head_logprobs as module

    if DEVICE == "cpu" and not module._INTERPRET:
        pytest.skip(f"triton was imported before TRITON_INTERPRET=1 was set (by {sys.argv[0]})")
    return module.triton_lm_head_logprobs


def fp64_logprobs(hidden, weight, targets, bias=None, scale=None, softcap=None):
    """Independent fp64 computation: full log_softmax, gather, max."""
    z = hidden.double() @ weight.double().T
    if bias is not None:
        z = z + bias.double()
    if scale is not None:
        z = z * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    t = targets.long()[:, None]
    lp = torch.log_softmax(z, dim=1).gather(1, t).squeeze(1)
    greedy = z.gather(1, t).squeeze(1) >= z.max(dim=1).values
    return lp, greedy


def make_inputs(n, c, v, dtype=torch.float32, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, c, generator=g) * 2.0
    weight = torch.randn(v, c, generator=g) / c**0.5
    targets = torch.randint(0, v, (n,), generator=g)
    b = torch.randn(v, generator=g) if bias else None
    to = lambda x: None if x is None else x.to(dtype=dtype, device=DEVICE)  # noqa: E731
    return to(hidden), to(weight), targets.to(DEVICE), to(b)


def assert_close_verbose(actual, expected, atol, what):
    diff = (actual.double().cpu() - expected.double().cpu()).abs()
    if not bool((diff <= atol).all()):
        worst = diff.argsort(descending=True)[:5].tolist()
        rows = ", ".join(f"row {i}: {actual[i].item():.7g} vs {expected[i].item():.7g}" for i in worst)
        pytest.fail(f"{what}: max |diff| {diff.max().item():.3g} > {atol}; worst {rows}")


# (N, C, V): N = 1; V not a multiple of the V tile; C not a multiple of the K tile;
# V an exact multiple; several row tiles with several V-splits (the deterministic merge).
SHAPES = [(1, 32, 17), (5, 48, 1031), (37, 64, 2053), (16, 32, 256), (3, 8, 100)]


@pytest.mark.parametrize(("n", "c", "v"), SHAPES)
def test_fp32_matches_reference_and_fp64(kernel, n, c, v):
    hidden, weight, targets, _ = make_inputs(n, c, v)
    lp, greedy = kernel(hidden, weight, targets)
    assert lp.dtype == torch.float32 and greedy.dtype == torch.bool and lp.shape == greedy.shape == (n,)
    ref_lp, ref_greedy = reference(hidden, weight, targets)
    exp_lp, _ = fp64_logprobs(hidden, weight, targets)
    assert_close_verbose(lp, ref_lp, ATOL[torch.float32], "vs reference")
    assert_close_verbose(lp, exp_lp, ATOL[torch.float32], "vs fp64")
    assert torch.equal(greedy.cpu(), ref_greedy.cpu())


def test_greedy_targets_are_detected(kernel):
    hidden, weight, _, _ = make_inputs(9, 32, 300, seed=3)
    argmax = (hidden.double() @ weight.double().T).argmax(dim=1)
    targets = argmax.clone()
    targets[::2] = (argmax[::2] + 1) % 300  # odd rows greedy, even rows not
    lp, greedy = kernel(hidden, weight, targets)
    assert greedy.cpu().tolist() == [i % 2 == 1 for i in range(9)]
    assert bool((lp <= 0).all())


@pytest.mark.parametrize(
    ("bias", "scale", "softcap"),
    [(True, None, None), (False, 0.5, None), (False, None, 5.0), (True, 3.0, 30.0)],
)
def test_bias_scale_softcap(kernel, bias, scale, softcap):
    hidden, weight, targets, b = make_inputs(11, 40, 777, seed=1, bias=bias)
    lp, greedy = kernel(hidden, weight, targets, b, scale=scale, softcap=softcap)
    ref_lp, ref_greedy = reference(hidden, weight, targets, b, scale=scale, softcap=softcap)
    exp_lp, _ = fp64_logprobs(hidden, weight, targets, b, scale, softcap)
    assert_close_verbose(lp, ref_lp, 1e-4, "vs reference")
    assert_close_verbose(lp, exp_lp, 1e-4, "vs fp64")
    assert torch.equal(greedy.cpu(), ref_greedy.cpu())


def test_huge_logits_stay_finite_and_exact(kernel):
    # Integer-valued inputs make every logit exact in fp32 (|z| <= 4e4 << 2**24), so the only
    # error left is the log-sum-exp itself.
    g = torch.Generator().manual_seed(7)
    hidden = (torch.randint(-3, 4, (6, 16), generator=g) * 1000).float()
    weight = torch.randint(-1, 2, (515, 16), generator=g).float()
    targets = torch.randint(0, 515, (6,), generator=g)
    hidden, weight, targets = hidden.to(DEVICE), weight.to(DEVICE), targets.to(DEVICE)
    lp, greedy = kernel(hidden, weight, targets)
    exp_lp, exp_greedy = fp64_logprobs(hidden, weight, targets)
    assert bool(torch.isfinite(lp).all())
    assert_close_verbose(lp, exp_lp, 1e-3, "huge logits vs fp64")
    assert torch.equal(greedy.cpu(), exp_greedy.cpu())


def test_exact_ties_count_as_greedy(kernel):
    v, c = 130, 16
    hidden = torch.ones(4, c, device=DEVICE)
    # All-equal rows: every token is a maximiser, log p = -log V.
    weight = torch.full((v, c), 0.25, device=DEVICE)
    targets = torch.tensor([0, 63, 64, 129], device=DEVICE)
    lp, greedy = kernel(hidden, weight, targets)
    assert greedy.all()
    assert_close_verbose(lp, torch.full((4,), -torch.log(torch.tensor(float(v))).item()), 1e-5, "uniform")
    # Two maximisers in different V tiles/splits: both count as greedy; a runner-up does not.
    weight = torch.zeros((v, c), device=DEVICE)
    weight[5] = 1.0
    weight[120] = 1.0
    weight[60] = 0.99
    lp, greedy = kernel(hidden, weight, torch.tensor([5, 120, 60, 0], device=DEVICE))
    assert greedy.cpu().tolist() == [True, True, False, False]
    ref_lp, ref_greedy = reference(hidden, weight, torch.tensor([5, 120, 60, 0], device=DEVICE))
    assert torch.equal(greedy.cpu(), ref_greedy.cpu())
    assert_close_verbose(lp, ref_lp, 1e-5, "ties vs reference")


def test_fp16_inputs(kernel):
    hidden, weight, targets, _ = make_inputs(7, 64, 1031, dtype=torch.float16, seed=2)
    lp, greedy = kernel(hidden, weight, targets)
    exp_lp, exp_greedy = fp64_logprobs(hidden, weight, targets)
    assert lp.dtype == torch.float32
    assert_close_verbose(lp, exp_lp, ATOL[torch.float16], "fp16 vs fp64")
    assert torch.equal(greedy.cpu(), exp_greedy.cpu())


def test_strided_hidden_and_dispatch(kernel):
    wide, weight, targets, _ = make_inputs(6, 80, 500, seed=4)
    hidden = wide[:, 8:56]  # row stride 80, unit column stride: used as is
    weight = weight[:, 8:56].contiguous()
    lp, greedy = kernel(hidden, weight, targets)
    via_dispatch = lm_head_logprobs(hidden, weight, targets, impl="triton")
    ref_lp, ref_greedy = reference(hidden, weight, targets)
    assert torch.equal(lp, via_dispatch[0]) and torch.equal(greedy, via_dispatch[1])
    assert_close_verbose(lp, ref_lp, ATOL[torch.float32], "strided vs reference")
    assert torch.equal(greedy.cpu(), ref_greedy.cpu())


def test_results_do_not_depend_on_batch_composition(kernel):
    hidden, weight, targets, _ = make_inputs(20, 32, 700, seed=5)
    full_lp, full_greedy = kernel(hidden, weight, targets)
    # One row alone gets a different grid (more V-splits); the merge order is fixed, so the
    # value may differ only by fp32 rounding of the split boundaries.
    for i in (0, 13, 19):
        lp, greedy = kernel(hidden[i : i + 1], weight, targets[i : i + 1])
        assert abs(lp.item() - full_lp[i].item()) <= 1e-5
        assert greedy.item() == full_greedy[i].item()
    again_lp, _ = kernel(hidden, weight, targets)
    assert torch.equal(again_lp, full_lp)  # deterministic: bitwise equal on a rerun


def test_out_of_range_target_gives_nan_and_bad_shapes_raise(kernel):
    hidden, weight, _, _ = make_inputs(3, 16, 50)
    lp, greedy = kernel(hidden, weight, torch.tensor([0, 50, -1], device=DEVICE))
    assert torch.isfinite(lp[0]) and torch.isnan(lp[1:]).all() and not greedy[1:].any()
    with pytest.raises(ValueError, match="do not match"):
        kernel(hidden, weight[:, :8], torch.zeros(3, dtype=torch.long, device=DEVICE))
    with pytest.raises(ValueError, match="targets must have shape"):
        kernel(hidden, weight, torch.zeros(4, dtype=torch.long, device=DEVICE))
    with pytest.raises(ValueError, match="bias must have shape"):
        kernel(hidden, weight, torch.zeros(3, dtype=torch.long, device=DEVICE), torch.zeros(7, device=DEVICE))
    empty_lp, empty_greedy = kernel(hidden[:0], weight, torch.zeros(0, dtype=torch.long, device=DEVICE))
    assert empty_lp.shape == empty_greedy.shape == (0,)


@pytest.mark.parametrize("sm_count", [None, 132])
def test_launch_geometry_covers_the_vocabulary_without_empty_splits(sm_count):
    from benchcal_eval.kernels.triton_lm_head_logprobs import launch_geometry

    for n in (1, 7, 64, 200, 4096, 8192, 32768):
        for v in (17, 100, 1031, 50304, 128256, 151936):
            blocks, per_split, splits = launch_geometry(n, v, sm_count)
            tiles = -(-v // blocks["BLOCK_V"])
            assert (splits - 1) * per_split < tiles <= splits * per_split, (n, v, per_split, splits)
            if sm_count is not None and tiles >= 16:
                assert splits >= 8  # V is split for L2 reuse even when rows alone fill the GPU


@pytest.mark.gpu
@pytest.mark.parametrize(("n", "c", "v"), [(2048, 2560, 50304), (4096, 896, 151936), (1, 2048, 128256)])
def test_bf16_on_gpu_realistic_shapes(kernel, n, c, v):
    hidden, weight, targets, _ = make_inputs(n, c, v, dtype=torch.bfloat16, seed=11)
    hidden = hidden * 4  # sharper distributions, so greedy flags are mostly clear-cut
    lp, greedy = kernel(hidden, weight, targets)
    ref_lp, ref_greedy = reference(hidden, weight, targets)
    assert_close_verbose(lp, ref_lp, ATOL[torch.bfloat16], "bf16 vs reference")
    # Both compute fp32 logits from the same bf16 inputs; only near-ties may flip.
    assert (greedy != ref_greedy).float().mean().item() < 1e-3
    argmax_targets = (hidden.float() @ weight.float().T).argmax(dim=1)
    _, greedy_at_argmax = kernel(hidden, weight, argmax_targets)
    assert greedy_at_argmax.float().mean().item() > 0.999


def test_the_dispatch_is_not_shadowed_by_the_kernel_module():
    # Importing a submodule binds its name on the package: a kernel module named like the
    # dispatch function (kernels/lm_head_logprobs.py) would replace the function.
    import importlib

    import benchcal_eval.kernels as kernels

    importlib.import_module("benchcal_eval.kernels.triton_lm_head_logprobs")
    assert kernels.lm_head_logprobs is lm_head_logprobs and callable(kernels.lm_head_logprobs)
