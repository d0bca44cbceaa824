"""Coalescing of per-run reconciles: serialised per key, bursts collapse, errors reach every joiner."""

from __future__ import annotations

import asyncio

import pytest

from benchcal_operator.coalesce import Coalescer


def test_a_burst_of_triggers_costs_at_most_two_reconciles() -> None:
    calls: list[int] = []
    running = 0
    most_at_once = 0

    async def reconcile() -> int:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        calls.append(len(calls))
        await asyncio.sleep(0.01)
        running -= 1
        return len(calls)

    async def main() -> list[int]:
        c = Coalescer()
        results = await asyncio.gather(*(c.run("run-a", reconcile) for _ in range(5)))
        assert len(c) == 0, "no state is left behind"
        return results

    results = asyncio.run(main())
    assert len(calls) == 2  # the first runs; the other four join the one queued behind it
    assert most_at_once == 1
    assert results[0] == 1 and results[1:] == [2, 2, 2, 2]


def test_different_runs_do_not_wait_for_each_other() -> None:
    order: list[str] = []

    def work(name: str, delay: float):
        async def go() -> str:
            order.append(f"start {name}")
            await asyncio.sleep(delay)
            order.append(f"end {name}")
            return name

        return go

    async def main() -> None:
        c = Coalescer()
        await asyncio.gather(c.run("slow", work("slow", 0.05)), c.run("fast", work("fast", 0.0)))

    asyncio.run(main())
    assert order.index("end fast") < order.index("end slow")


def test_an_error_reaches_every_caller_it_served_and_the_next_trigger_runs_anew() -> None:
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        raise RuntimeError(f"attempt {attempts}")

    async def main() -> list[BaseException | None]:
        c = Coalescer()
        out = await asyncio.gather(*(c.run("k", failing) for _ in range(3)), return_exceptions=True)
        with pytest.raises(RuntimeError, match="attempt 3"):
            await c.run("k", failing)  # a later trigger is not swallowed by the failed ones
        return out

    out = asyncio.run(main())
    assert [str(e) for e in out] == ["attempt 1", "attempt 2", "attempt 2"]
