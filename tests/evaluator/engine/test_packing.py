"""Pure packing: the trie, its cut into pieces, rows, batches, truncation and the tree mask."""

from __future__ import annotations

import pytest
import torch

from benchcal.errors import BadInput
from benchcal_eval.engine.attention import build_attention_inputs, tree_mask
from benchcal_eval.engine.packing import concatenate_rows, first_fit_decreasing, pack_requests
from benchcal_eval.engine.trie import build_trie, common_prefix, cut_trie
from benchcal_eval.requests import ScoreRequest as R
from tests.evaluator.engine.conftest import random_shared_requests


def all_rows(packing):
    return [row for batch in packing.batches for row in batch]


def visible(row, q):
    """Row positions query q attends, from the mask rule itself."""
    return [k for k in range(len(row)) if k <= q < row.ends[k]]


def check_layout(requests, packing):
    """Independent check of a packing: every token sees exactly the tokens of its own prefix (in
    order, at positions 0..depth), and each request's targets are scored after exactly its
    context + the continuation so far, once per request."""
    seen: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    for row in all_rows(packing):
        for q in range(len(row)):
            keys = visible(row, q)
            assert [row.position_ids[k] for k in keys] == list(range(len(keys))), "ancestors 0..depth"
            assert keys[-1] == q
        for m, owner in enumerate(row.pair_owners):
            slot = row.pair_targets[m]
            pos = row.score_positions[slot]
            prefix = tuple(row.tokens[k] for k in visible(row, pos))
            seen.setdefault(owner, []).append((prefix, row.targets[slot]))
    assert sorted(seen) == list(range(len(packing.scorers)))
    for s, scorer in enumerate(packing.scorers):
        req = requests[scorer.requests[0]]
        want = [(req.context + req.continuation[:j], t) for j, t in enumerate(req.continuation)]
        assert sorted(seen[s]) == sorted(want)
        assert all(requests[i] == req for i in scorer.requests)


def test_shared_context_is_laid_out_once_with_branches_continuing_positions():
    reqs = [R((1, 2, 3), (10, 11, 12)), R((1, 2, 3), (20,)), R((1, 2, 3), (30, 31))]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    (row,) = all_rows(packing)
    # preorder of the trie: context once, then each continuation minus its last token
    assert row.tokens == (1, 2, 3, 10, 11, 30)
    assert row.position_ids == (0, 1, 2, 3, 4, 3)
    assert row.ends == (6, 6, 6, 5, 5, 6)  # 10 and 11 form one branch; 30 another
    assert sorted(zip(row.score_positions, row.targets, strict=True)) == [
        (2, 10),
        (2, 20),
        (2, 30),
        (3, 11),
        (4, 12),
        (5, 31),
    ]
    check_layout(reqs, packing)


def test_prefixes_are_shared_at_any_depth():
    # nested few-shot-like prompts: each context extends the previous one, each with two choices
    base = tuple(range(1, 31))
    reqs = []
    for k in (5, 12, 30):
        ctx = (*base[:k], 90 + k)
        reqs += [R(ctx, (70, 71)), R(ctx, (72,))]
    packing = pack_requests(reqs, row_tokens=1000, token_budget=1000)
    (row,) = all_rows(packing)
    # the 30-token chain once, plus one question token per context and one body token per 2-token choice
    assert len(row) == 30 + 3 + 3 == packing.trie_tokens
    check_layout(reqs, packing)


def test_single_token_continuations_cost_no_extra_tokens_and_share_the_scored_position_per_token():
    reqs = [R((5, 6), (t,)) for t in (7, 8, 9, 7)]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    (row,) = all_rows(packing)
    assert row.tokens == (5, 6)
    assert row.score_positions == (1, 1, 1) and sorted(row.targets) == [
        7,
        8,
        9,
    ]  # 7 asked twice, one head row
    assert len(packing.scorers) == 3
    check_layout(reqs, packing)


def test_choices_that_start_alike_share_tokens_and_their_first_target():
    reqs = [R((1, 2), (40, 41, 42)), R((1, 2), (40, 41, 43)), R((1, 2), (40, 44))]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    (row,) = all_rows(packing)
    assert row.tokens == (1, 2, 40, 41)  # (40, 41) shared by the first two, 40 by all three
    assert len(row.targets) == 5  # 40@1, 41@2, 44@2, 42@3, 43@3
    check_layout(reqs, packing)


def test_identical_requests_share_one_scorer():
    reqs = [R((1, 2), (3, 4)), R((9,), (3,)), R((1, 2), (3, 4))]
    packing = pack_requests(reqs, row_tokens=100, token_budget=100)
    assert sorted(s.requests for s in packing.scorers) == [(0, 2), (1,)]


@pytest.mark.parametrize(("row_tokens", "token_budget"), [(4096, 4096), (64, 128), (16, 24)])
def test_any_packing_gives_every_request_exactly_its_own_prefixes(row_tokens, token_budget):
    reqs = random_shared_requests(seed=row_tokens)
    packing = pack_requests(reqs, row_tokens=row_tokens, token_budget=token_budget)
    check_layout(reqs, packing)
    computed = sum(len(r) for r in all_rows(packing))
    assert packing.trie_tokens <= computed < sum(len(r.context) + len(r.continuation) - 1 for r in reqs)
    for batch in packing.batches:
        assert len(batch) == 1 or len(batch) * max(len(r) for r in batch) <= token_budget


def test_cut_keeps_pieces_within_the_limit_and_recomputes_only_the_shared_prefix():
    reqs = random_shared_requests(seed=5, questions=12)
    trie, _ = build_trie(reqs, [r.context for r in reqs])
    for limit, row_limit in ((10_000, 10_000), (200, 200), (200, 30), (60, 60), (25, 25), (1, 1)):
        pieces = cut_trie(trie, limit, row_limit, min_shared=4)
        assert [k for a, b in pieces for k in range(a, b)] == list(range(len(trie.paths)))  # in order, once
        for a, b in pieces:
            shared = min(trie.lcp[a + 1 : b], default=0)
            cap = limit if shared >= 4 else row_limit
            assert b - a == 1 or trie.piece_tokens(a, b) <= cap
        recomputed = sum(trie.lcp[a] for a, _ in pieces)
        assert sum(trie.piece_tokens(a, b) for a, b in pieces) == trie.n_tokens + recomputed
    assert cut_trie(trie, 10_000) == [(0, len(trie.paths))]
    assert len(cut_trie(trie, 10_000, 30, min_shared=1)) > 1  # unrelated trees never share a piece


def test_a_chain_too_long_for_a_row_is_cut_at_its_branches():
    # two 10-token contexts sharing 8 tokens; limit 15: the 8 shared tokens are computed twice
    reqs = [R(tuple(range(10)), (50,)), R((*range(8), 20, 21), (51,))]
    trie, _ = build_trie(reqs, [r.context for r in reqs])
    assert trie.lcp == (0, 8) and trie.n_tokens == 12
    assert cut_trie(trie, 12) == [(0, 2)]
    assert cut_trie(trie, 11) == [(0, 1), (1, 2)]


def test_common_prefix():
    assert common_prefix((1, 2, 3), (1, 2, 4)) == 2
    assert common_prefix((1, 2), (1, 2, 3)) == 2
    assert common_prefix((5,), (6,)) == 0
    long = tuple(range(1000))
    assert common_prefix(long, (*long[:777], -1)) == 777


def test_first_fit_decreasing_fills_rows_and_isolates_oversize_items():
    assert sorted(map(sorted, first_fit_decreasing([6, 5, 4, 3, 2], 10))) == [[0, 2], [1, 3, 4]]
    assert first_fit_decreasing([3, 30, 3, 3], 8) == [[1], [0, 2], [3]]  # nothing joins the oversize one


def test_groups_schedule_earlier_groups_first():
    g0 = [R((1, 2, 3), (4,)), R((1, 2, 3), (5, 6))]
    g1 = [R((7, 8), (9,)), R((1, 2, 3), (4,))]  # shares a path with group 0: scheduled with it
    g2 = [R((30, 31), (32,))]
    reqs = [*g0, *g1, *g2]
    groups = [0, 0, 1, 1, 2]
    packing = pack_requests(reqs, row_tokens=3, token_budget=3, groups=groups)
    first_batch = {groups[i] for batch in packing.batches[:1] for row in batch
                   for o in row.pair_owners for i in packing.scorers[o].requests}  # fmt: skip
    assert first_batch <= {0, 1}
    order = [min(groups[i] for row in b for o in row.pair_owners for i in packing.scorers[o].requests)
             for b in packing.batches]  # fmt: skip
    assert order == sorted(order)


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


@pytest.mark.parametrize(("row_tokens", "token_budget"), [(64, 512), (16, 24), (256, 256)])
def test_flat_packing_is_one_row_per_batch_within_the_budget_computing_the_same_tokens(
    row_tokens, token_budget
):
    reqs = random_shared_requests(seed=token_budget)
    rowed = pack_requests(reqs, row_tokens=row_tokens, token_budget=token_budget)
    flat = pack_requests(reqs, row_tokens=row_tokens, token_budget=token_budget, flat=True)
    check_layout(reqs, flat)
    assert all(len(batch) == 1 for batch in flat.batches)
    # a row over the budget is one oversize piece (a path longer than the cap), a row of its own either way
    oversize = {r.tokens for r in all_rows(rowed) if len(r) > token_budget}
    assert all(len(row) <= token_budget or row.tokens in oversize for (row,) in flat.batches)
    # the same trie pieces, only laid out differently: the same tokens reach the model
    assert sum(len(row) for (row,) in flat.batches) == sum(len(r) for r in all_rows(rowed))
    assert len(flat.batches) <= len(rowed.batches)


def test_concatenated_rows_keep_each_rows_mask_and_scoring_positions():
    packing = pack_requests(random_shared_requests(seed=5, questions=6), row_tokens=40, token_budget=400)
    rows = next(b for b in packing.batches if len(b) >= 3)
    joined = concatenate_rows(rows)
    assert len(joined) == sum(len(r) for r in rows)
    whole = tree_mask(torch.tensor([joined.ends]))[0]
    start = 0
    for row in rows:
        end = start + len(row)
        assert torch.equal(whole[start:end, start:end], tree_mask(torch.tensor([row.ends]))[0])
        assert not whole[start:end, :start].any() and not whole[start:end, end:].any()  # no row sees another
        start = end

    # every (scored position, target, owner) of the rows, in the joined row's coordinates
    def scored(row, offset=0):
        return [
            (row.tokens[row.score_positions[t]], offset + row.score_positions[t], row.targets[t], o)
            for t, o in zip(row.pair_targets, row.pair_owners, strict=True)
        ]

    offsets = [sum(len(r) for r in rows[:i]) for i in range(len(rows))]
    assert scored(joined) == [x for row, off in zip(rows, offsets, strict=True) for x in scored(row, off)]
    assert joined.position_ids == tuple(p for r in rows for p in r.position_ids)


def test_tree_mask_is_the_ancestor_relation_and_padding_sees_only_itself():
    # row: a(0) -> b(1) -> c(2); a -> d(3); then another piece e(4); then padding (5)
    ends = torch.tensor([[4, 3, 3, 4, 5, 6]])
    m = tree_mask(ends)[0]
    assert m[2].tolist() == [True, True, True, False, False, False]
    assert m[3].tolist() == [True, False, False, True, False, False]  # not its sibling branch
    assert m[4].tolist() == [False, False, False, False, True, False]  # the next piece sees only itself
    assert m[5].tolist() == [False] * 5 + [True]  # padding attends only to itself


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
    assert inputs.pair_index.tolist() == [0, 1, 2] and len(inputs.owner_ids) == 2
    assert inputs.n_tokens == 6
    assert inputs.attention_mask[1, 0, 1, 1] == 0  # padding position attends to itself
    assert inputs.attention_mask[1, 0, 1, 0] == torch.finfo(torch.float32).min
