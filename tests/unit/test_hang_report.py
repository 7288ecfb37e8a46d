"""The report of what the engine loop waits on when a test times out (``tests.framework.hangs``)."""

from __future__ import annotations

import asyncio

from paddock.core.engine import Engine
from tests.framework.hangs import describe


async def _inner(never: asyncio.Event) -> None:
    await never.wait()


async def _outer(never: asyncio.Event) -> None:
    await _inner(never)


def test_a_stuck_task_is_reported_with_its_chain_of_awaits() -> None:
    engine = Engine("hang-report-test")
    try:
        never = engine.run(_make_event(), timeout=10)
        engine.submit(_named(_outer(never)))
        engine.run(asyncio.sleep(0.05), timeout=10)  # the task has reached its await
        report = describe(engine.loop)
        assert "task 'stuck here':" in report
        lines = report.splitlines()
        outer = next(i for i, line in enumerate(lines) if "in _outer" in line)
        inner = next(i for i, line in enumerate(lines) if "in _inner" in line)
        assert outer < inner, report  # outermost first
        assert any("waits on <Future pending" in line for line in lines[inner:]), report
    finally:
        engine.close(timeout=5)


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


async def _named(coro: object) -> None:
    asyncio.current_task().set_name("stuck here")  # type: ignore[union-attr]
    await coro  # type: ignore[misc]
