"""Coalescing of per-run reconciles: pure asyncio, no Kubernetes (tested on its own)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class _Flight:
    """One run's coalescing state: the tail of its reconcile chain and the queued follow-up."""

    __slots__ = ("queued", "tail")

    def __init__(self) -> None:
        self.tail: asyncio.Future[Any] | None = None  # the newest reconcile (running or queued)
        self.queued: asyncio.Future[Any] | None = None  # a reconcile not started yet: joinable


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark as retrieved: joiners are optional


class Coalescer:
    """Per-key coalescing of async work (one reconcile per CalibrationRun at a time).

    ``run(key, start)`` waits for the key's current call, then runs ``start()``; a trigger that
    arrives while another is already queued joins that one instead of adding a third. Many events
    for one run (Job updates, echoes of our own status writes) thus cost at most two reconciles,
    and every caller still sees the result or the error of the reconcile that served it.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, start: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``start()`` after the key's current call, or join the one already queued."""
        return await _run(self._flights, key, start)


async def _run(flights: dict[Hashable, _Flight], key: Hashable, start: Callable[[], Awaitable[Any]]) -> Any:
    flight = flights.setdefault(key, _Flight())
    if flight.queued is not None:
        return await asyncio.shield(flight.queued)
    mine: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    mine.add_done_callback(_retrieved)
    previous, flight.tail, flight.queued = flight.tail, mine, mine
    try:
        if previous is not None:
            await asyncio.wait([previous])
        flight.queued = None  # from here on a trigger may have been missed: it queues anew
        result = await start()
    except BaseException as exc:
        if flight.queued is mine:
            flight.queued = None
        if not mine.done():
            if isinstance(exc, asyncio.CancelledError):
                mine.cancel()
            else:
                mine.set_exception(exc)
        raise
    else:
        mine.set_result(result)
        return result
    finally:
        if flight.tail is mine and flights.get(key) is flight:
            del flights[key]
