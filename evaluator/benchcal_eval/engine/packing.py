"""Pure packing of score requests into rows: shared-context trees, token-budgeted rows, batches.

A *group* is one context with every distinct continuation asked after it. It is laid out as

    [ context | cont_1[:-1] | cont_2[:-1] | ... ]

Each continuation is a *branch*: it sees the whole context and itself, never another branch,
and its positions restart at ``len(context)``. A continuation's last token is never an input
(nothing is predicted after it), and its first token is predicted by the last context token, so
single-token choices add no tokens at all (this subsumes lm-eval's single-token logits cache).

Rows hold several groups (each its own tree) up to ``row_tokens``; a group larger than that gets
a row of its own, whole (its context is still computed once). Only a group larger than the whole
``token_budget`` of a forward is split into parts, each repeating the context. Batches hold rows
of similar length up to ``token_budget`` padded tokens.
Everything here is plain Python on token tuples, so it is tested without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchcal.errors import BadInput
from benchcal_eval.requests import ScoreRequest

CONTEXT = -1  # branch id of context tokens
PAD = -1  # segment id of padding tokens


@dataclass(frozen=True)
class Branch:
    continuation: tuple[int, ...]
    requests: tuple[int, ...]  # indices of the (identical) requests this branch answers


@dataclass(frozen=True)
class Group:
    context: tuple[int, ...]
    branches: tuple[Branch, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.context) + sum(len(b.continuation) - 1 for b in self.branches)


@dataclass(frozen=True)
class Row:
    """One packed sequence. Per token: id, position, segment (group) and branch within it.

    ``score_positions[i]`` is the row position whose output predicts ``targets[i]``, which belongs
    to branch ``owners[i]`` (a global branch index into the packing's branch list).
    """

    tokens: tuple[int, ...]
    position_ids: tuple[int, ...]
    segment_ids: tuple[int, ...]
    branch_ids: tuple[int, ...]
    score_positions: tuple[int, ...]
    targets: tuple[int, ...]
    owners: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Packing:
    batches: tuple[tuple[Row, ...], ...]
    branches: tuple[Branch, ...]  # global branch index -> branch
    truncated: tuple[int, ...]  # indices of requests whose context was left-truncated


def effective_context(req: ScoreRequest, index: int, max_length: int | None) -> tuple[tuple[int, ...], bool]:
    """Validate one request and left-truncate its context as lm-eval does.

    The model input is ``(context + continuation)[-(max_length + 1):][:-1]``, so at most
    ``max_length + 1 - len(continuation)`` context tokens are kept.
    """
    if not req.context:
        raise BadInput(
            f"score request #{index} has an empty context; prepend the BOS (or EOS) token as the "
            "tokenizer step does, so the first continuation token has something to be predicted from"
        )
    if not req.continuation:
        raise BadInput(f"score request #{index} has an empty continuation; there is nothing to score")
    if max_length is None or len(req.context) + len(req.continuation) - 1 <= max_length:
        return req.context, False
    keep = max_length + 1 - len(req.continuation)
    if keep < 1:
        raise BadInput(
            f"score request #{index}: continuation of {len(req.continuation)} tokens does not fit the "
            f"model's max_length {max_length}; shorten it or raise --max-length"
        )
    return req.context[-keep:], True


def group_requests(
    requests: Sequence[ScoreRequest], max_length: int | None = None
) -> tuple[list[Group], list[int]]:
    """Group requests by (effective) context; identical requests share one branch."""
    by_context: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}
    truncated: list[int] = []
    for i, req in enumerate(requests):
        ctx, was_cut = effective_context(req, i, max_length)
        if was_cut:
            truncated.append(i)
        by_context.setdefault(ctx, {}).setdefault(req.continuation, []).append(i)
    groups = [
        Group(ctx, tuple(Branch(cont, tuple(idx)) for cont, idx in conts.items()))
        for ctx, conts in by_context.items()
    ]
    return groups, truncated


def split_group(group: Group, limit: int) -> list[Group]:
    """Split a group's branches so each part fits ``limit`` tokens (context repeated per part).

    Called with the forward's token budget as the limit: a part must fit one forward.

    A part that cannot fit even one branch keeps that branch alone (it then overflows its row).
    """
    if group.n_tokens <= limit:
        return [group]
    parts: list[list[Branch]] = [[]]
    size = len(group.context)
    for branch in group.branches:
        extra = len(branch.continuation) - 1
        if parts[-1] and size + extra > limit:
            parts.append([])
            size = len(group.context)
        parts[-1].append(branch)
        size += extra
    return [Group(group.context, tuple(p)) for p in parts]


def pack_rows(groups: Sequence[Group], row_tokens: int) -> list[list[Group]]:
    """First-fit decreasing: longest groups first, each into the first row with room."""
    if row_tokens < 1:
        raise ValueError(f"row_tokens must be >= 1, got {row_tokens}")
    rows: list[list[Group]] = []
    room: list[int] = []
    for group in sorted(groups, key=lambda g: (-g.n_tokens, g.context)):
        n = group.n_tokens
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(group)
                room[r] -= n
                break
        else:
            rows.append([group])
            room.append(row_tokens - n)  # negative for an oversize group: nothing else joins it
    return rows


def layout_row(groups: Sequence[Group], branch_index: dict[int, int]) -> Row:
    """Lay the groups of one row out as token/position/segment/branch lists and scoring gathers.

    ``branch_index`` maps ``id(branch)`` to its global index (the owner of its scored positions).
    """
    tokens: list[int] = []
    positions: list[int] = []
    segments: list[int] = []
    branch_ids: list[int] = []
    score_positions: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    for seg, group in enumerate(groups):
        c = len(group.context)
        last_context = len(tokens) + c - 1
        tokens.extend(group.context)
        positions.extend(range(c))
        segments.extend([seg] * c)
        branch_ids.extend([CONTEXT] * c)
        for b, branch in enumerate(group.branches):
            owner = branch_index[id(branch)]
            body = branch.continuation[:-1]
            start = len(tokens)
            tokens.extend(body)
            positions.extend(range(c, c + len(body)))
            segments.extend([seg] * len(body))
            branch_ids.extend([b] * len(body))
            # token j of the continuation is predicted by the context end (j=0) or body token j-1
            score_positions.append(last_context)
            score_positions.extend(range(start, start + len(body)))
            targets.extend(branch.continuation)
            owners.extend([owner] * len(branch.continuation))
    return Row(
        tuple(tokens), tuple(positions), tuple(segments), tuple(branch_ids),
        tuple(score_positions), tuple(targets), tuple(owners),
    )  # fmt: skip


def batch_rows(rows: Sequence[Row], token_budget: int) -> list[list[Row]]:
    """Consecutive rows (sorted longest first) while rows x longest-row stays within the budget."""
    batches: list[list[Row]] = []
    for row in sorted(rows, key=len, reverse=True):
        if batches and (len(batches[-1]) + 1) * len(batches[-1][0]) <= token_budget:
            batches[-1].append(row)
        else:
            batches.append([row])
    return batches


def pack_requests(
    requests: Sequence[ScoreRequest],
    *,
    row_tokens: int,
    token_budget: int,
    max_length: int | None = None,
) -> Packing:
    """Requests -> batches of rows of context trees, plus the branch table to map results back."""
    groups, truncated = group_requests(requests, max_length)
    parts = [part for g in groups for part in split_group(g, max(token_budget, row_tokens))]
    branches = [b for g in parts for b in g.branches]
    branch_index = {id(b): i for i, b in enumerate(branches)}
    rows = [layout_row(row_groups, branch_index) for row_groups in pack_rows(parts, row_tokens)]
    batches = tuple(tuple(batch) for batch in batch_rows(rows, token_budget))
    return Packing(batches, tuple(branches), tuple(truncated))
