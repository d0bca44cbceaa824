"""One token trie over every score request of a call, and its cut into pieces that fit a forward.

A request scores ``continuation`` after ``context``; the model input is its *path*
``context + continuation[:-1]`` (lm-eval's truncation applied first, see ``packing.effective_context``),
and the output at depth ``len(context) - 1 + j`` predicts ``continuation[j]``. Two requests whose
paths share a prefix need that prefix computed once: its keys and values depend only on the tokens
before them and their positions, and the position of a token is its depth in the trie.

The trie is kept implicitly, as the distinct paths sorted lexicographically plus, for each path,
the number of leading tokens it shares with the previous one (``lcp``). That order is the trie's
depth-first order, so laying the sorted paths out one after another, each without the ``lcp``
tokens it shares, lays the trie out in preorder (``packing.layout_row``); every node is one token.

Cutting: a *piece* is a contiguous run of sorted paths; it costs its first path in full plus the
new tokens of the others, and must fit its cap unless it is a single path. A run of paths that is
too large is split at its shallowest branching node into the node's children, which are grouped
in order while they fit; a child still too large is split the same way. Each extra piece of one
node recomputes the node's prefix: correct, just less shared.

Everything here is plain Python on token tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchcal_eval.requests import ScoreRequest


@dataclass(frozen=True)
class Scorer:
    """One distinct (effective context, continuation): the requests it answers, all identical."""

    continuation: tuple[int, ...]
    requests: tuple[int, ...]


@dataclass(frozen=True)
class Path:
    """One distinct model input and every target scored along it.

    ``targets[i] = (depth, token, scorer)``: the output at ``depth`` must predict ``token`` for
    scorer ``scorer`` (an index into ``Trie.scorers``). Several scorers can share a path (choices
    of one token share the context's path) and a target (choices that start alike).
    """

    tokens: tuple[int, ...]
    targets: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Trie:
    paths: tuple[Path, ...]  # sorted lexicographically = the trie's depth-first leaf order
    lcp: tuple[int, ...]  # lcp[k]: leading tokens path k shares with path k-1 (lcp[0] = 0)
    scorers: tuple[Scorer, ...]

    def piece_tokens(self, start: int, end: int) -> int:
        """Tokens a piece of paths [start, end) computes: its first path whole, then new tokens."""
        return len(self.paths[start].tokens) + sum(
            len(self.paths[k].tokens) - self.lcp[k] for k in range(start + 1, end)
        )

    @property
    def n_tokens(self) -> int:
        """Tokens the whole trie computes when nothing is cut (the sharing bound)."""
        return self.piece_tokens(0, len(self.paths)) if self.paths else 0


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Length of the longest common prefix (bisection on slice equality, which runs in C)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def build_trie(
    requests: Sequence[ScoreRequest], contexts: Sequence[tuple[int, ...]]
) -> tuple[Trie, list[int]]:
    """The trie of ``requests`` with their effective ``contexts``; also request -> scorer index."""
    scorer_of: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    members: list[list[int]] = []
    conts: list[tuple[int, ...]] = []
    request_scorer: list[int] = []
    by_path: dict[tuple[int, ...], list[tuple[int, int, int]]] = {}
    for i, (req, ctx) in enumerate(zip(requests, contexts, strict=True)):
        key = (ctx, req.continuation)
        s = scorer_of.get(key)
        if s is None:
            s = scorer_of[key] = len(members)
            members.append([])
            conts.append(req.continuation)
            base = len(ctx) - 1
            path = ctx + req.continuation[:-1]
            by_path.setdefault(path, []).extend((base + j, tok, s) for j, tok in enumerate(req.continuation))
        members[s].append(i)
        request_scorer.append(s)
    ordered = sorted(by_path)
    lcp = [0] + [common_prefix(a, b) for a, b in zip(ordered, ordered[1:], strict=False)]  # noqa: RUF007
    trie = Trie(
        paths=tuple(Path(p, tuple(by_path[p])) for p in ordered),
        lcp=tuple(lcp),
        scorers=tuple(Scorer(c, tuple(m)) for c, m in zip(conts, members, strict=True)),
    )
    return trie, request_scorer


MIN_SHARED = 16  # a shared prefix shorter than this is not worth a row longer than row_limit


def cut_trie(
    trie: Trie, limit: int, row_limit: int | None = None, min_shared: int = MIN_SHARED
) -> list[tuple[int, int]]:
    """Pieces ``[start, end)`` of sorted paths covering every path once, in trie order.

    A piece whose paths share at least ``min_shared`` leading tokens may hold up to ``limit``
    tokens (``Trie.piece_tokens``; it then gets a row of its own); other pieces hold up to
    ``row_limit`` (default ``limit``), since putting unrelated trees into one piece saves nothing
    over packing them into rows. A single path longer than its cap is a piece of its own.
    """
    row_limit = limit if row_limit is None else row_limit
    if min(limit, row_limit) < 1:
        raise ValueError(f"limits must be >= 1, got {limit} and {row_limit}")
    n = len(trie.paths)
    lengths = [len(p.tokens) for p in trie.paths]
    lcp = trie.lcp
    # new[k]: tokens path k adds after path k-1; cost(i, j) = lengths[i] + new[i+1..j-1]
    prefix = [0] * (n + 1)
    for k in range(n):
        prefix[k + 1] = prefix[k] + (lengths[k] - lcp[k])

    def cost(i: int, j: int) -> int:
        return lengths[i] + prefix[j] - prefix[i + 1]

    pieces: list[tuple[int, int]] = []
    todo = [(0, n)] if n else []  # ranges still to place, depth-first so pieces stay in trie order
    while todo:
        i, j = todo.pop()
        if j - i == 1:
            pieces.append((i, j))
            continue
        # the children of the range's shallowest branching node start where lcp is minimal
        shallowest = min(lcp[i + 1 : j])
        cap = limit if shallowest >= min_shared else row_limit
        if cost(i, j) <= cap:
            pieces.append((i, j))
            continue
        starts = [i] + [k for k in range(i + 1, j) if lcp[k] == shallowest]
        groups: list[tuple[int, int]] = []
        for a, b in zip(starts, [*starts[1:], j], strict=True):  # consecutive children while they fit
            if groups and cost(groups[-1][0], b) <= cap:
                groups[-1] = (groups[-1][0], b)
            else:
                groups.append((a, b))
        todo.extend(reversed(groups))  # a group over the cap is one child: split it next
    return pieces
