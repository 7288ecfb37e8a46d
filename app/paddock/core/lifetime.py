"""One lifetime for the background tasks of one thing (a sandbox, an open session).

    life = await Lifetime.start("sandbox vm-1")
    life.spawn(follow_events(), name="guest events")
    ...
    await life.close()   # every task still running is cancelled and awaited, once

The tasks run in one ``asyncio.TaskGroup`` held by a supervising task, so none is left behind and
none is forgotten: ``close`` ends them all and waits for them, in one place instead of a
cancel-and-suppress block per task. A task that fails is logged with its name; the group then ends
its siblings too (one lifetime). So a task that is not meant to end the others catches what it
expects itself. Cancelling the caller of ``close`` still cancels that caller (nothing is swallowed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Lifetime:
    def __init__(self, name: str) -> None:
        """Use ``await Lifetime.start(name)``."""
        self.name = name
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, name: str) -> Lifetime:
        life = cls(name)
        life._supervisor = asyncio.create_task(life._supervise(), name=f"{name}: lifetime")
        try:
            await life._ready.wait()
        except BaseException:  # cancelled before it began: it ends, and is not left waiting
            await life.close()
            raise
        return life

    async def _supervise(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._ready.set()
                await self._stop.wait()
                for task in list(self._tasks):
                    task.cancel()
        except* Exception as failed:  # the tasks' own failures: the lifetime ends, said once
            for exc in failed.exceptions:
                log.error("%s: a background task failed", self.name, exc_info=exc)
        finally:
            self._group = None
            self._ready.set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any] | None:
        """Run ``coro`` until it ends or the lifetime does. None (and ``coro`` closed, never run)
        once the lifetime has ended."""
        if self._group is None or self._stop.is_set():
            coro.close()
            return None
        task = self._group.create_task(coro, name=f"{self.name}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def open(self) -> bool:
        return self._group is not None and not self._stop.is_set()

    async def close(self) -> None:
        """Cancel every task still running and wait until all have ended (idempotent)."""
        self._stop.set()
        if self._supervisor is not None:
            await asyncio.shield(self._supervisor)
