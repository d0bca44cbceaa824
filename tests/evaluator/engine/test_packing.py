"""Pure packing: groups, branches, rows, batches, truncation and the tree mask."""

from __future__ import annotations

import pytest
import torch

from benchcal.errors import BadInput
from benchcal_eval.engine.attention import build_attention_inputs, tree_mask
from benchcal_eval.engine.packing import CONTEXT, Branch, Group, pack_requests, pack_rows, split_group
from benchcal_eval.requests import ScoreRequest as R


def all_rows(packing):
    return [row for batch in packing.batches for row in batch]


def test_shared_context_is_laid_out_once_with_branches_restarting_positions():
    reqs = [R((1, 2, 3), (10, 11, 12)), R((1, 2, 3), (20,)), R((1, 2, 3), (30, 31))]
    (row,) = all_rows(pack_requests(reqs, row_tokens=100, token_budget=100))
    # context once, then each continuation minus its last token (the single-token one adds nothing)
    assert row.tokens == (1, 2, 3, 10, 11, 30)
    assert row.position_ids == (0, 1, 2, 3, 4, 3)
    assert row.branch_ids == (CONTEXT, CONTEXT, CONTEXT, 0, 0, 2)
    # every continuation token is predicted by the context end or its own previous token
    assert row.targets == (10, 11, 12, 20, 30, 31)
    assert row.score_positions == (2, 3, 4, 2, 2, 5)


def test_single_token_continuations_cost_no_extra_tokens():
    reqs = [R((5, 6), (t,)) for t in (7, 8, 9, 10)]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    (row,) = all_rows(packing)
    assert row.tokens == (5, 6)
    assert row.score_positions == (1, 1, 1, 1)
    assert len(packing.branches) == 4


def test_identical_requests_share_one_branch():
    reqs = [R((1, 2), (3, 4)), R((9,), (3,)), R((1, 2), (3, 4))]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    assert sorted(b.requests for b in packing.branches) == [(0, 2), (1,)]


def test_many_groups_share_a_row_and_oversize_group_gets_its_own():
    small = [R((i, i + 1), (50, 51)) for i in range(0, 8, 2)]  # 3 tokens each
    big = R(tuple(range(100, 130)), (60, 61, 62))  # 32 tokens > row_tokens
    packing = pack_requests([*small, big], row_tokens=12, token_budget=1000)
    rows = all_rows(packing)
    lengths = sorted(len(r) for r in rows)
    assert lengths == [12, 32]
    big_row = next(r for r in rows if len(r) == 32)
    assert set(big_row.segment_ids) == {0}


def test_group_over_row_tokens_keeps_its_shared_context_when_it_fits_the_budget():
    reqs = [R(tuple(range(1, 21)), (30 + i, 0, 0)) for i in range(4)]  # 20 + 4 * 2 = 28 tokens
    packing = pack_requests(reqs, row_tokens=8, token_budget=64)
    (row,) = all_rows(packing)
    assert len(row) == 28 and row.tokens[:20] == tuple(range(1, 21))
    split = pack_requests(reqs, row_tokens=8, token_budget=24)  # over the budget: context repeated
    assert sorted(len(r) for r in all_rows(split)) == [24, 24]


def test_group_with_too_many_branches_is_split_repeating_the_context():
    group = Group((1, 2, 3), tuple(Branch((10 + i, 0, 0), (i,)) for i in range(4)))
    parts = split_group(group, limit=7)  # context 3 + 2 per branch
    assert [len(p.branches) for p in parts] == [2, 2]
    assert all(p.context == (1, 2, 3) for p in parts)
    assert all(p.n_tokens <= 7 for p in parts)


def test_first_fit_decreasing_fills_rows():
    groups = [Group((i,) * n, (Branch((0,), (i,)),)) for i, n in enumerate([6, 5, 4, 3, 2])]
    rows = pack_rows(groups, row_tokens=10)
    assert sorted(sum(g.n_tokens for g in row) for row in rows) == [10, 10]


def test_batches_respect_the_token_budget():
    reqs = [R(tuple(range(1, 9)), (i,)) for i in range(20)]  # identical contexts -> one group
    reqs += [R((i,) * 8, (1,)) for i in range(2, 12)]  # ten more groups of 8 tokens
    packing = pack_requests(reqs, row_tokens=8, token_budget=24)
    for batch in packing.batches:
        assert len(batch) * max(len(r) for r in batch) <= 24
    assert sum(len(b) for b in packing.batches) == 11


def test_empty_context_or_continuation_is_rejected_with_the_request_index():
    with pytest.raises(BadInput, match=r"#1 has an empty context.*BOS"):
        pack_requests([R((1,), (2,)), R((), (2,))], row_tokens=10, token_budget=10)
    with pytest.raises(BadInput, match=r"#0 has an empty continuation"):
        pack_requests([R((1,), ())], row_tokens=10, token_budget=10)


def test_left_truncation_follows_lm_eval():
    # max_length 6: input = (ctx+cont)[-7:][:-1] -> keep 7 - 3 = 4 context tokens
    packing = pack_requests(
        [R(tuple(range(1, 11)), (20, 21, 22))], row_tokens=50, token_budget=50, max_length=6
    )
    (row,) = all_rows(packing)
    assert row.tokens == (7, 8, 9, 10, 20, 21)
    assert packing.truncated == (0,)
    with pytest.raises(BadInput, match="does not fit the model's max_length 2"):
        pack_requests([R((1,), (2, 3, 4))], row_tokens=50, token_budget=50, max_length=2)


def test_tree_mask_blocks_sibling_branches_and_other_segments():
    seg = torch.tensor([[0, 0, 0, 0, 0, 1, 1, -1]])
    br = torch.tensor([[CONTEXT, CONTEXT, 0, 0, 1, CONTEXT, 0, CONTEXT]])
    m = tree_mask(seg, br)[0]
    assert m[3].tolist() == [True, True, True, True, False, False, False, False]  # branch 0, 2nd token
    assert m[4].tolist() == [True, True, False, False, True, False, False, False]  # branch 1
    assert m[6].tolist() == [False] * 5 + [True, True, False]  # next group sees only itself
    assert m[7].tolist() == [False] * 7 + [True]  # padding attends only to itself
    assert not m[1, 2]  # context never sees continuations


def test_attention_inputs_gather_indices_point_into_the_padded_batch():
    packing = pack_requests(
        [R((1, 2, 3, 4), (5, 6)), R((7,), (8,))], row_tokens=5, token_budget=100
    )  # two rows of lengths 5 and 1 in one batch
    (batch,) = packing.batches
    inputs = build_attention_inputs(batch, "cpu", torch.float32)
    assert inputs.input_ids.shape == (2, 5)
    assert inputs.attention_mask.shape == (2, 1, 5, 5)
    assert inputs.score_index.tolist() == [3, 4, 5]  # row 1 starts at flat index 5
    assert inputs.targets.tolist() == [5, 6, 8]
    assert inputs.n_tokens == 6
    assert inputs.attention_mask[1, 0, 1, 1] == 0  # padding position attends to itself
    assert inputs.attention_mask[1, 0, 1, 0] == torch.finfo(torch.float32).min
