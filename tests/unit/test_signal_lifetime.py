"""The two small mechanisms in ``paddock.core`` that replaced hand-made listener lists and the
cancel-and-suppress blocks (#31): ``Signal`` and ``Lifetime``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from paddock.core.lifetime import Lifetime
from paddock.core.signal import Signal


def test_a_signal_calls_each_listener_in_order_and_one_bug_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    changed: Signal[str, int] = Signal("changed")
    seen: list[tuple[str, str, int]] = []

    def broken(_name: str, _n: int) -> None:
        raise RuntimeError("a listener's bug")

    def first(name: str, n: int) -> None:
        seen.append(("first", name, n))

    changed.connect(first)
    changed.connect(broken)
    changed.connect(lambda name, n: seen.append(("last", name, n)))
    with caplog.at_level(logging.ERROR):
        changed.emit("a", 1)
    assert seen == [("first", "a", 1), ("last", "a", 1)]
    assert "a listener of changed failed" in caplog.text
    changed.disconnect(first)
    changed.disconnect(first)  # not connected any more: nothing happens
    changed.emit("b", 2)
    assert seen[-1] == ("last", "b", 2) and len(changed) == 2


def test_a_lifetime_ends_every_task_it_holds_once_and_nothing_starts_after() -> None:
    async def run() -> tuple[bool, bool, object]:
        life = await Lifetime.start("test")
        forever = life.spawn(asyncio.Event().wait(), name="forever")
        done = life.spawn(asyncio.sleep(0), name="done")
        assert forever is not None and done is not None
        await done
        await life.close()
        await life.close()  # again: nothing more to do
        late = life.spawn(asyncio.sleep(0), name="late")
        return forever.cancelled(), life.open, late

    cancelled, still_open, late = asyncio.run(run())
    assert cancelled and not still_open and late is None


def test_a_task_that_fails_ends_the_lifetime_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> bool:
        life = await Lifetime.start("failing")
        sibling = life.spawn(asyncio.Event().wait(), name="sibling")
        failed = asyncio.Event()

        async def boom() -> None:
            failed.set()
            raise ValueError("boom")

        life.spawn(boom(), name="boom")
        await failed.wait()
        await life.close()  # returns normally: the failure is logged, not raised here
        assert sibling is not None
        return sibling.cancelled()

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(run())
    assert "failing: a background task failed" in caplog.text and "boom" in caplog.text


def test_cancelling_the_closer_still_cancels_it() -> None:
    async def run() -> bool:
        life = await Lifetime.start("slow")

        async def slow_to_stop() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0.2)  # cleaning up takes a moment

        life.spawn(slow_to_stop(), name="slow")
        closer = asyncio.ensure_future(life.close())
        await asyncio.sleep(0)
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closer
        await life.close()  # the lifetime still ends
        return life.open

    assert asyncio.run(run()) is False


def test_a_lifetime_cancelled_while_it_starts_leaves_no_task() -> None:
    async def run() -> set[asyncio.Task[object]]:
        before = set(asyncio.all_tasks())
        starting = asyncio.ensure_future(Lifetime.start("cancelled"))
        await asyncio.sleep(0)  # its supervisor is created, not yet running
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        for _ in range(3):
            await asyncio.sleep(0)
        return {t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()}

    assert asyncio.run(run()) == set()
