"""Pure packing of score requests into rows and batches: trie pieces laid out with a tree mask.

``engine.trie`` builds one token trie over all requests of a call and cuts it into pieces (runs of
sorted paths): up to ``row_tokens`` tokens, or up to the token budget (at most
``MAX_PIECE_TOKENS``) when their paths share a prefix worth keeping (``trie.MIN_SHARED``). Here pieces are laid into rows
(first-fit decreasing up to ``row_tokens``; a larger piece gets a row of its own) and rows into
batches (up to ``token_budget`` padded tokens; ``flat``: one row per batch). A piece is laid out in preorder: each path adds
only the tokens it does not share with the previous one, so a shared prefix appears once.

Per token a row holds its id, its position (= depth in the trie, so a branch's positions continue
from its parent's) and ``ends``: the row index just past the token's subtree. Query ``q`` may
attend key ``k`` iff ``k <= q < ends[k]``, i.e. ``k`` is ``q`` or one of its ancestors; this one
rule covers causality, sibling branches and the other pieces of the row, at any depth (the old
one-context-many-choices layout is the depth-2 case). A continuation's last token is never an
input, so single-token choices add no tokens at all.

Scoring positions: one per distinct (row position, target token); several requests may share one
(identical requests, or choices that start alike). ``pair_targets``/``pair_owners`` say which
scorer each of them counts for. Everything here is plain Python, tested without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchcal.errors import BadInput
from benchcal_eval.engine.trie import Scorer, Trie, build_trie, cut_trie
from benchcal_eval.requests import ScoreRequest

# Longest piece (and so row) a shared tree may grow to: FlexAttention's create_block_mask evaluates
# the mask densely once per batch ([T, T] booleans), so rows stay well below the GPU budget.
MAX_PIECE_TOKENS = 8192


@dataclass(frozen=True)
class Row:
    """One packed sequence.

    ``score_positions[i]`` is the row position whose output predicts ``targets[i]``;
    ``pair_targets[m]`` / ``pair_owners[m]``: scored target ``pair_targets[m]`` counts for scorer
    ``pair_owners[m]`` (a global index into ``Packing.scorers``).
    """

    tokens: tuple[int, ...]
    position_ids: tuple[int, ...]
    ends: tuple[int, ...]
    score_positions: tuple[int, ...]
    targets: tuple[int, ...]
    pair_targets: tuple[int, ...]
    pair_owners: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Packing:
    batches: tuple[tuple[Row, ...], ...]
    scorers: tuple[Scorer, ...]  # global scorer index -> the identical requests it answers
    truncated: tuple[int, ...]  # indices of requests whose context was left-truncated
    trie_tokens: int  # tokens the uncut trie would compute (the sharing bound)


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


def first_fit_decreasing(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of item indices: largest items first, each into the first bin with room.

    An item larger than ``capacity`` gets a bin of its own that nothing else joins. A max-tree
    over the bins' free room finds the first fitting bin in O(log bins).
    """
    if capacity < 1:
        raise ValueError(f"row_tokens must be >= 1, got {capacity}")
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    size = 1
    while size < max(len(sizes), 1):
        size *= 2
    room = [-1] * (2 * size)  # leaves size..2*size-1: free room of bin (leaf - size); -1 = unused
    bins: list[list[int]] = []
    for i in order:
        n = sizes[i]
        if room[1] >= n:  # descend to the leftmost bin with enough room
            node = 1
            while node < size:
                node = 2 * node if room[2 * node] >= n else 2 * node + 1
            b = node - size
            bins[b].append(i)
            free = room[node] - n
        else:
            b = len(bins)
            bins.append([i])
            node = size + b
            free = capacity - n if n <= capacity else -1
        room[node] = free
        node //= 2
        while node:
            room[node] = max(room[2 * node], room[2 * node + 1])
            node //= 2
    return bins


def layout_row(trie: Trie, pieces: Sequence[tuple[int, int]]) -> Row:
    """Lay pieces (runs of the trie's sorted paths) out in preorder, one after another."""
    tokens: list[int] = []
    positions: list[int] = []
    ends: list[int] = []
    scored: dict[tuple[int, int], int] = {}  # (row position, target token) -> scored index
    pair_targets: list[int] = []
    pair_owners: list[int] = []
    for start, end in pieces:
        node_at: list[int] = []  # row position of each depth on the current path
        for k in range(start, end):
            path = trie.paths[k]
            shared = trie.lcp[k] if k > start else 0  # a piece recomputes its first path whole
            here = len(tokens)
            for d in range(shared, len(node_at)):  # leaving these subtrees: they end here
                ends[node_at[d]] = here
            del node_at[shared:]
            new = path.tokens[shared:]
            tokens.extend(new)
            positions.extend(range(shared, len(path.tokens)))
            ends.extend([0] * len(new))
            node_at.extend(range(here, here + len(new)))
            for depth, target, scorer in path.targets:
                slot = scored.setdefault((node_at[depth], target), len(scored))
                pair_targets.append(slot)
                pair_owners.append(scorer)
        for pos in node_at:
            ends[pos] = len(tokens)
    return Row(
        tuple(tokens), tuple(positions), tuple(ends),
        tuple(p for p, _ in scored), tuple(t for _, t in scored),
        tuple(pair_targets), tuple(pair_owners),
    )  # fmt: skip


def concatenate_rows(rows: Sequence[Row]) -> Row:
    """The rows laid end to end as one row. No token's subtree crosses the end of its row, so
    under the tree rule the rows stay as separate as they were in a batch."""
    if len(rows) == 1:
        return rows[0]
    tokens: list[int] = []
    positions: list[int] = []
    ends: list[int] = []
    score_positions: list[int] = []
    targets: list[int] = []
    pair_targets: list[int] = []
    pair_owners: list[int] = []
    for row in rows:
        offset, base = len(tokens), len(targets)
        tokens.extend(row.tokens)
        positions.extend(row.position_ids)
        ends.extend(e + offset for e in row.ends)
        score_positions.extend(p + offset for p in row.score_positions)
        targets.extend(row.targets)
        pair_targets.extend(j + base for j in row.pair_targets)
        pair_owners.extend(row.pair_owners)
    return Row(
        tuple(tokens), tuple(positions), tuple(ends), tuple(score_positions), tuple(targets),
        tuple(pair_targets), tuple(pair_owners),
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
    groups: Sequence[int] | None = None,
    flat: bool = False,
) -> Packing:
    """Requests -> batches of rows of trie pieces, plus the scorer table to map results back.

    ``groups[i]`` (optional) ranks request ``i``'s group: pieces are scheduled by the lowest group
    they serve, so group ``g`` is complete once the pieces of groups ``<= g`` have run (callers
    get each group's results early; see ``ScoringEngine.score_groups``).

    ``flat``: for an attention path that runs a batch as one unpadded sequence (the CPU tree
    path), every batch is a single row of up to ``token_budget`` tokens (pieces bin-packed by
    first-fit decreasing), so no padding reaches the model; ``row_tokens`` then only caps the
    pieces whose paths share nothing worth keeping.
    """
    contexts: list[tuple[int, ...]] = []
    truncated: list[int] = []
    for i, req in enumerate(requests):
        ctx, was_cut = effective_context(req, i, max_length)
        contexts.append(ctx)
        if was_cut:
            truncated.append(i)
    trie, _ = build_trie(requests, contexts)
    pieces = cut_trie(trie, max(row_tokens, min(token_budget, MAX_PIECE_TOKENS)), row_tokens)
    rank = [0] * len(pieces)
    if groups is not None:
        scorer_rank = [min(groups[i] for i in s.requests) for s in trie.scorers]
        for p, (start, end) in enumerate(pieces):
            rank[p] = min(scorer_rank[s] for k in range(start, end) for _, _, s in trie.paths[k].targets)
    by_rank: dict[int, list[int]] = {}
    for p, r in enumerate(rank):
        by_rank.setdefault(r, []).append(p)
    batches: list[tuple[Row, ...]] = []
    for r in sorted(by_rank):
        mine = by_rank[r]
        sizes = [trie.piece_tokens(*pieces[p]) for p in mine]
        rows = [
            layout_row(trie, [pieces[mine[i]] for i in sorted(bin_)])  # trie order within a row
            for bin_ in first_fit_decreasing(sizes, token_budget if flat else row_tokens)
        ]
        if flat:
            batches.extend((row,) for row in rows)
        else:
            batches.extend(tuple(b) for b in batch_rows(rows, token_budget))
    return Packing(tuple(batches), trie.scorers, tuple(truncated), trie.n_tokens)
